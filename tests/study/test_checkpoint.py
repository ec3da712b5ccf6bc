"""Checkpoint payloads: exact round trips without pickle, torch only when tensors are inside."""
import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from rlnas.errors import ConfigError, StorageError
from rlnas.study import checkpoint


def test_round_trip_of_everything_agents_store():
    generator = torch.Generator().manual_seed(3)
    model = torch.nn.Linear(3, 2)
    adam = torch.optim.Adam(model.parameters(), betas=(0.8, 0.99))
    model(torch.ones(1, 3)).sum().backward()
    adam.step()
    payload = {
        "ints": [1, -2, 2**80], "floats": [0.5, float("inf"), -float("inf")], "nan": float("nan"), "none": None,
        "flag": True, "text": "é|~", "tuple": (1, (2, "x")), "bytes": b"\x00\xff",
        "array": np.arange(6.0).reshape(2, 3), "int_array": np.array([1, 2], dtype=np.int8),
        "scalar_tensor": torch.tensor(2.5), "bf16": torch.ones(2).bfloat16(),
        "numpy_scalar": np.float32(1.5), "rng": np.random.default_rng(7).bit_generator.state,
        "generator": generator.get_state(), "model": model.state_dict(), "adam": adam.state_dict(),
        "int_keys": {0: "a", 1: "b"}, "dunder": {"__tensor__": 1},
    }
    back = checkpoint.decode(checkpoint.encode(payload))
    assert back["ints"] == [1, -2, 2**80] and back["floats"] == [0.5, float("inf"), -float("inf")]
    assert np.isnan(back["nan"]) and back["none"] is None and back["flag"] is True and back["text"] == "é|~"
    assert back["tuple"] == (1, (2, "x")) and back["bytes"] == b"\x00\xff" and back["numpy_scalar"] == 1.5
    assert np.array_equal(back["array"], payload["array"]) and back["int_array"].dtype == np.int8
    assert back["scalar_tensor"].shape == () and back["bf16"].dtype == torch.bfloat16
    assert back["rng"] == payload["rng"] and back["int_keys"] == {0: "a", 1: "b"}
    assert back["dunder"] == {"__tensor__": 1}
    assert torch.equal(back["generator"], payload["generator"])
    restored = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    restored.load_state_dict(back["adam"])
    assert restored.state_dict()["param_groups"][0]["betas"] == (0.8, 0.99)
    assert all(torch.equal(back["model"][k], v) for k, v in model.state_dict().items())


def test_no_pickle_inside_and_bad_bytes_are_storage_errors():
    data = checkpoint.encode({"a": np.ones(3)})
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == ["state.json", "a0.npy"]
    with pytest.raises(StorageError):
        checkpoint.decode(b"not a zip")



def test_a_state_that_cannot_be_checkpointed_blames_the_state_not_the_storage():
    with pytest.raises(ConfigError, match=r"^cannot checkpoint a NumPy object array at \['a'\]: a state_dict may hold"):
        checkpoint.encode({"a": np.array([object()])})
    with pytest.raises(ConfigError, match=r"^cannot checkpoint a value of type object at \['agent'\]\['rng'\]\[1\]"):
        checkpoint.encode({"agent": {"rng": [1, object()]}, "next_slot": 3})


def test_a_search_whose_agent_state_cannot_be_checkpointed_says_so(tmp_path):
    from rlnas import create_study
    from rlnas.agents import AGENTS, register_agent
    from rlnas.agents.random import RandomAgent
    from rlnas.testing.toy import ToyEvaluator

    class Unsaveable(RandomAgent):
        def state_dict(self):
            return {**super().state_dict(), "handle": object()}

    toy = ToyEvaluator()
    register_agent("unsaveable", Unsaveable)
    try:
        study = create_study(space=toy.space, agent="unsaveable", evaluator=toy,
                             storage=f"sqlite:///{tmp_path / 'runs.db'}", name="s", checkpoint_every=1)
        with pytest.raises(ConfigError, match=r"cannot checkpoint a value of type object at \['agent'\]\['handle'\]"):
            study.optimize(3)  # was "storage failed: cannot checkpoint a value of type object"
    finally:
        AGENTS.unregister("unsaveable")


def test_older_torch_save_checkpoints_still_load():
    buffer = io.BytesIO()
    torch.save({"agent": {"w": torch.ones(2)}, "told": 3}, buffer)
    back = checkpoint.decode(buffer.getvalue())
    assert back["told"] == 3 and torch.equal(back["agent"]["w"], torch.ones(2))


def test_numpy_only_payloads_never_import_torch():
    code = ("import sys; from rlnas.study import checkpoint; import numpy as np; "
            "b = checkpoint.decode(checkpoint.encode({'x': np.ones(2), 'y': (1, 2)})); "
            "assert b['y'] == (1, 2); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
