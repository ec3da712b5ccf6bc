"""Rewards: closed forms of the metric, absolute (TuNAS) and soft / hard (MnasNet) rewards."""
import math

import pytest

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.rewards import RewardError, create_reward

M = Measurement({"valid_acc": 80.0, "latency_ms": 12.0})


def test_closed_forms():
    assert create_reward("valid_acc")(M) == 80.0 and create_reward(None)(M) == 80.0
    spec = {"metric": "valid_acc", "cost": "latency_ms", "target": 10.0, "beta": -0.5}
    assert create_reward({"name": "abs", **spec})(M) == pytest.approx(80.0 - 0.5 * 0.2)
    assert create_reward({"name": "soft", **spec})(M) == pytest.approx(80.0 * 1.2 ** -0.5)
    assert create_reward({"name": "hard", **spec})(M) == pytest.approx(80.0 * 1.2 ** -0.5)
    below = Measurement({"valid_acc": 80.0, "latency_ms": 8.0})
    assert create_reward({"name": "hard", **spec})(below) == 80.0  # no bonus under the target
    assert create_reward({"name": "soft", **spec})(below) > 80.0
    assert create_reward({"name": "abs", **spec})(below) == pytest.approx(80.0 - 0.5 * 0.2)  # symmetric


def test_specs_round_trip_and_bad_specs_are_clear():
    spec = {"name": "abs", "metric": "supernet_acc", "cost": "latency_ms", "target": 5.0, "beta": -0.07}
    assert create_reward(spec).spec() == spec and create_reward("test_acc").spec() == "test_acc"
    for bad, message in [({"name": "abs", "target": 5, "beta": 0.1}, "beta must be negative"),
                         ({"name": "soft", "target": -1, "beta": -0.1}, "target must be positive"),
                         ({"name": "abs", "target": math.nan, "beta": -1}, "finite"),
                         ({"name": "linear", "target": 1, "beta": -1}, "unknown reward 'linear'"),
                         ({"name": "abs", "beta": -1}, "missing option.s. target"), ({"target": 1}, "has no 'name'"),
                         (3, "metric name")]:
        with pytest.raises(ConfigError, match=message):
            create_reward(bad)


def test_missing_metrics_are_reward_errors():
    with pytest.raises(RewardError, match="no 'latency_ms' metric"):
        create_reward({"name": "abs", "target": 1.0, "beta": -1.0})(Measurement({"valid_acc": 1.0}))
