"""ONNX export checked with onnxruntime, and the architecture JSON round trip."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.export import export_architecture_json, export_onnx, load_architecture_json
from rlnas.spaces import create_space
from rlnas.spaces.base import Categorical, Space

torch.set_num_threads(1)
ort = pytest.importorskip("onnxruntime")


def _run(path, x: torch.Tensor) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x.numpy()})[0]


def test_onnx_matches_pytorch_on_a_cell_network(tmp_path):
    from rlnas.models.nb201 import NB201Network

    space = create_space("nb201")
    torch.manual_seed(0)
    model = NB201Network(space.known()["best_cifar10"], channels=8, cells_per_stage=1, in_channels=1)
    # non-trivial BatchNorm statistics, so that eval mode matters
    with torch.no_grad():
        model.train()
        model(torch.randn(16, 1, 8, 8))
    path = export_onnx(model, tmp_path / "net" / "cell.onnx", (1, 8, 8))
    assert path.is_file() and model.training  # the mode is restored
    model.eval()
    for batch in (1, 3):  # the batch dimension is dynamic
        x = torch.randn(batch, 1, 8, 8)
        np.testing.assert_allclose(_run(path, x), model(x).detach().numpy(), atol=1e-4)


def test_onnx_fixed_batch_and_bad_shape(tmp_path):
    model = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5))
    path = export_onnx(model, tmp_path / "m.onnx", (2, 3, 16, 16), dynamic_batch=False)
    x = torch.randn(2, 3, 16, 16)
    np.testing.assert_allclose(_run(path, x), model(x).detach().numpy(), atol=1e-4)
    with pytest.raises(Exception):
        _run(path, torch.randn(3, 3, 16, 16))
    with pytest.raises(ConfigError, match="input_shape"):
        export_onnx(model, tmp_path / "x.onnx", (16, 16))


def test_a_network_beyond_onnxs_2_gib_is_refused_before_anything_is_written(tmp_path):
    # torch scattered its weights over loose files (classifier.weight, ...) that the next export overwrote
    huge = nn.Sequential(nn.Flatten(), nn.Linear(40_000, 14_000, device="meta"))  # 2.1 GiB, never allocated
    with pytest.raises(ConfigError, match=r"the network's weights take 2\.1 GiB: an ONNX file holds at most 2 GiB"):
        export_onnx(huge, tmp_path / "big.onnx", (1, 200, 200))
    assert list(tmp_path.iterdir()) == []


def test_architecture_json_round_trip():
    space = create_space("nb201")
    cell = space.known()["best_cifar10"]
    data = json.loads(json.dumps(export_architecture_json(space, cell)))
    assert data["space"] == "nb201" and data["fingerprint"] == space.fingerprint
    assert data["key"] == space.key(cell) and data["choices"] == cell.to_dict()
    assert load_architecture_json(data) == cell
    assert load_architecture_json(data, space) == cell
    other = Space("nb201", [Categorical("x", (1, 2))])
    with pytest.raises(InvalidCandidate, match="does not belong"):
        load_architecture_json(data, other)
    with pytest.raises(InvalidCandidate, match="does not match"):
        load_architecture_json({**data, "key": space.key(space.known()["all_skip"])})
    with pytest.raises(InvalidCandidate):
        export_architecture_json(space, {"edge_0_1": "none"})


def test_export_functions_name_arguments_of_the_wrong_kind(tmp_path):
    with pytest.raises(ConfigError, match="export_onnx needs a torch.nn.Module, got int 5"):
        export_onnx(5, tmp_path / "x.onnx", (3, 8, 8))  # an AttributeError from inside
    with pytest.raises(ConfigError, match="of positive integers, got 'abc'"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx", "abc")
    with pytest.raises(ConfigError, match="an architecture is the dict export_architecture_json writes"):
        load_architecture_json("abc")  # AttributeError: 'str' object has no attribute 'get'
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform != "linux", reason="a folder named in bytes that are no text: Linux file systems")
def test_onnx_export_into_a_folder_whose_name_is_not_text(tmp_path):
    folder = os.fsdecode(os.fsencode(tmp_path) + b"/x\xff")  # as Python sees a name the locale cannot decode
    os.mkdir(folder)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    path = export_onnx(model, os.path.join(folder, "m.onnx"), (3, 2, 2))  # torch took only text paths
    session = ort.InferenceSession(path.read_bytes(), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, 2, 2)
    with torch.no_grad():
        np.testing.assert_allclose(session.run(None, {"input": x.numpy()})[0], model(x).numpy(), atol=1e-6)
    assert sorted(os.listdir(folder)) == ["m.onnx"]  # and no temporary file left
