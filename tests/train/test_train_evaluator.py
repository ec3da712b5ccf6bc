"""The train-from-scratch evaluator on the shipped 8x8 digits."""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from rlnas.costs import count_params
from rlnas.errors import ConfigError, InvalidCandidate, RlnasError
from rlnas.evaluators import create_evaluator
from rlnas.evaluators.train import TrainEvaluator, TrainingDiverged, augment_batch
from rlnas.spaces import create_space

torch.set_num_threads(1)
SPACE = create_space("nb201")
CELL = SPACE.known()["best_cifar10"]


def tiny_cnn(space, candidate, kwargs):
    """A small CNN whose width follows the candidate (conv ops on edge 0->1 -> wider)."""
    width = 16 if "conv" in str(candidate["edge_0_1"]) else 4
    return nn.Sequential(
        nn.Conv2d(kwargs["in_channels"], width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16 * width, kwargs["num_classes"]),
    )


def nan_model(space, candidate, kwargs):
    layer = nn.Linear(64, kwargs["num_classes"])
    with torch.no_grad():
        layer.weight[0, 0] = float("nan")
    return nn.Sequential(nn.Flatten(), layer)


def test_registered_and_spec_round_trips():
    ev = create_evaluator("train", space="nb201", epochs=2, lr=0.1, seed=3)
    assert isinstance(ev, TrainEvaluator)
    again = create_evaluator(**ev.spec())
    assert again.spec() == ev.spec()
    assert ev.spec()["space"] == "nb201" and ev.spec()["dataset"] == "digits"


def test_learns_digits_and_reports_metrics():
    seen = []
    ev = TrainEvaluator("nb201", epochs=3, lr=0.2, model_fn=tiny_cnn,
                        progress=lambda e, n, m: seen.append((e, n, dict(m))))
    m = ev.evaluate(CELL)
    assert m.metrics["valid_acc"] > 80 and m.metrics["test_acc"] > 80  # chance is 10 %
    assert set(m.metrics) == {"valid_acc", "test_acc", "train_loss", "train_time_s", "params_m", "flops_m"}
    network = tiny_cnn(SPACE, CELL, {"in_channels": 1, "num_classes": 10})
    assert m.metrics["params_m"] == pytest.approx(count_params(network) / 1e6)
    # MACs: conv 1->16 3x3 at 8x8 positions, linear 256->10; FLOPs = 2 * MACs
    assert m.metrics["flops_m"] == pytest.approx(2 * (9 * 16 * 64 + 256 * 10) / 1e6)
    curve = m.info["curve"]
    assert curve["epoch"] == [1.0, 2.0, 3.0] and len(curve["train_loss"]) == 3
    assert curve["train_loss"][-1] < curve["train_loss"][0]
    assert curve["valid_acc"][-1] == m.metrics["valid_acc"]
    assert [(e, n) for e, n, _ in seen] == [(1, 3), (2, 3), (3, 3)]
    assert seen[-1][2]["valid_acc"] == m.metrics["valid_acc"]
    assert m.info["steps"] == 3 * (1079 // 64) and m.cost_seconds >= m.metrics["train_time_s"]


def test_same_seed_same_result_and_global_rng_untouched():
    ev = TrainEvaluator("nb201", epochs=1, model_fn=tiny_cnn)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = ev.evaluate(CELL, seed=7)
    assert torch.equal(torch.rand(1), before)  # the evaluator forked the global RNG
    b = ev.evaluate(CELL, seed=7)
    c = ev.evaluate(CELL, seed=8)
    def drop(m):
        return {k: v for k, v in m.metrics.items() if k != "train_time_s"}
    assert drop(a) == drop(b) and a.info["curve"] == b.info["curve"]
    assert a.info["curve"]["train_loss"] != c.info["curve"]["train_loss"]
    assert TrainEvaluator("nb201", epochs=1, model_fn=tiny_cnn, seed=7).evaluate(CELL).info["curve"] == a.info["curve"]


def test_budget_overrides_epochs_or_steps():
    ev = TrainEvaluator("nb201", epochs=5, model_fn=tiny_cnn)
    m = ev.evaluate(CELL, budget=0.5)
    assert m.info["steps"] == math.ceil(0.5 * 16) and m.info["curve"]["epoch"] == [0.5]
    steps = TrainEvaluator("nb201", steps=20, model_fn=tiny_cnn)
    assert steps.evaluate(CELL).info["steps"] == 20
    m = steps.evaluate(CELL, budget=3)
    assert m.info["steps"] == 3 and m.info["curve"]["epoch"] == [3 / 16]


def test_nb201_cell_network_trains_at_small_width():
    from rlnas.models.nb201 import NB201Network

    def build(space, candidate, kw):
        return NB201Network(candidate, num_classes=kw["num_classes"], channels=4, cells_per_stage=1,
                            in_channels=kw["in_channels"])

    m = TrainEvaluator("nb201", steps=10, model_fn=build).evaluate(SPACE.known()["all_conv3x3"])
    assert 0 <= m.metrics["valid_acc"] <= 100 and m.metrics["params_m"] > 0


def test_divergence_raises_a_dedicated_error():
    ev = TrainEvaluator("nb201", epochs=1, model_fn=nan_model)
    with pytest.raises(TrainingDiverged, match="loss is nan at step 1 of 16") as err:
        ev.evaluate(CELL)
    assert isinstance(err.value, RlnasError)


def test_bad_input_is_refused():
    with pytest.raises(ConfigError, match="epochs"):
        TrainEvaluator("nb201", epochs=0)
    with pytest.raises(ConfigError, match="steps"):
        TrainEvaluator("nb201", steps=2.5)
    with pytest.raises(ConfigError, match="unknown space"):
        TrainEvaluator("nope")
    with pytest.raises(ConfigError, match="train evaluator option 'augment' must be true or false, got 'no'"):
        TrainEvaluator("nb201", augment="no")
    assert TrainEvaluator("nb201", data_root=Path("/nowhere")).data_root == "/nowhere"  # a path is a string here
    with pytest.raises(InvalidCandidate):
        TrainEvaluator("nb201", model_fn=tiny_cnn).evaluate({"edge_0_1": "none"})
    with pytest.raises(ConfigError, match="no training step"):
        TrainEvaluator("nb201", model_fn=tiny_cnn).evaluate(CELL, budget=0)


def test_augment_batch_crops_and_flips_consistently():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4) + 1
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=0)
    for i in range(2):  # without padding a crop is the image itself, maybe mirrored
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1))
    out = augment_batch(x, torch.Generator().manual_seed(1), pad=2)
    assert out.shape == x.shape
    for i in range(2):  # every non-zero pixel comes from the same image
        values = set(out[i][out[i] != 0].tolist())
        assert values <= set(x[i].flatten().tolist())
    again = augment_batch(x, torch.Generator().manual_seed(1), pad=2)
    assert torch.equal(out, again)


def test_prepare_says_in_one_line_when_the_network_does_not_fit_the_data(tmp_path):
    import numpy as np

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(5):
            np.save(tmp_path / c / f"{i}.npy", np.full((1, 1), i, dtype=np.uint8))
    with pytest.raises(ConfigError, match="the nb201 network does not run on the 1x1x1 images of 'imagefolder': "):
        TrainEvaluator("nb201", "imagefolder", data_root=str(tmp_path)).prepare()
    for options, message in (({"model_kwargs": {"num_classes": 3}}, "num_classes=3, but data set 'digits' has 10"),
                             ({"model_kwargs": {"in_channels": 3}}, "in_channels=3, but the images of data set "
                                                                    "'digits' have 1 channel")):
        with pytest.raises(ConfigError, match=message):
            TrainEvaluator("nb201", "digits", **options).prepare()


def test_folders_are_stored_absolute_and_options_that_cannot_apply_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = TrainEvaluator("nb201", "digits", weights_dir="w", keep_weights=1, data_root="~/x.npz").spec()
    assert spec["weights_dir"] == str(tmp_path / "w") and spec["data_root"].startswith("/")
    with pytest.raises(ConfigError, match="keep_weights needs weights_dir"):
        TrainEvaluator("nb201", "digits", keep_weights=2)
    with pytest.raises(ConfigError, match="split_seed is an option of the evaluator itself"):
        TrainEvaluator("nb201", "digits", dataset_options={"split_seed": 3})
    (tmp_path / "gone").symlink_to("/nowhere/weights")  # every trial failed with FileExistsError
    with pytest.raises(ConfigError, match="gone is a link to /nowhere/weights, which does not exist"):
        TrainEvaluator("nb201", "digits", weights_dir=str(tmp_path / "gone" / "s")).prepare()


def test_a_network_too_large_for_the_machine_is_refused_before_it_is_built(monkeypatch):
    # channels=100000 was a traceback (an allocation of 360 GB); channels=4000 got the process killed by the kernel
    with pytest.raises(ConfigError, match="the nb201 model option 'channels' must be at most 1024, got 100000"):
        TrainEvaluator("nb201", model_kwargs={"channels": 100_000})
    real = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: 256 if name == "SC_PHYS_PAGES" else real(name))  # 1 MiB
    evaluator = TrainEvaluator("nb201", dataset="digits", model_kwargs={"channels": 64})
    with pytest.raises(ConfigError, match=r"GiB of weights: training it needs about .* GiB, and this machine has 0"):
        evaluator.prepare()
