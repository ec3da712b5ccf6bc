"""Rewards: what the agent maximises, computed from an evaluator's :class:`Measurement`.

A reward is part of a study's identity and is stored as a spec: a plain metric name
(``"valid_acc"``) or a mapping such as
``{"name": "abs", "metric": "valid_acc", "cost": "latency_ms", "target": 12.0, "beta": -0.07}``.

| name | reward | from |
|---|---|---|
| ``metric`` | ``q`` | the metric itself |
| ``abs`` | ``q + β·|c/T − 1|`` | TuNAS (absolute value reward; β < 0) |
| ``soft`` | ``q·(c/T)^β`` | MnasNet soft constraint (β < 0) |
| ``hard`` | ``q·min((c/T)^β, 1)`` | MnasNet hard constraint (β < 0) |

``q`` is the quality metric, ``c`` the cost metric, ``T`` the cost target.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.registry import Registry

MAX_REWARD = 1e30
"""Largest reward magnitude a study accepts: the controllers learn in float32, where larger values overflow
(a trial whose reward is larger fails with that reason)."""


class RewardError(ConfigError):
    """A measurement lacks what the reward needs (the trial fails with this message)."""


@dataclass(frozen=True)
class MetricReward:
    """The value of one metric of the measurement."""

    metric: str = "valid_acc"

    def __post_init__(self) -> None:
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError(f"reward metric must be a non-empty string, got {self.metric!r}")

    def __call__(self, measurement: Measurement) -> float:
        return _metric(measurement, self.metric)

    def spec(self) -> str | dict[str, Any]:
        """The stored form: the bare metric name."""
        return self.metric

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics the reward reads."""
        return (self.metric,)


@dataclass(frozen=True)
class CostAwareReward:
    """Quality traded against a cost relative to a target (see the module table)."""

    name: str
    target: float
    beta: float
    metric: str = "valid_acc"
    cost: str = "latency_ms"

    def __post_init__(self) -> None:
        if self.name not in _COST_FORMS:
            raise ConfigError(f"unknown cost-aware reward {self.name!r} (choices: {', '.join(_COST_FORMS)})")
        for label, value in (("target", self.target), ("beta", self.beta)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"reward {self.name!r}: {label} must be a finite number, got {value!r}")
        if not self.target > 0:
            raise ConfigError(f"reward {self.name!r}: target must be positive, got {self.target!r}")
        if not self.beta < 0:
            raise ConfigError(f"reward {self.name!r}: beta must be negative (a cost above the target lowers the "
                              f"reward), got {self.beta!r}")
        for label, value in (("metric", self.metric), ("cost", self.cost)):
            if not isinstance(value, str) or not value:
                raise ConfigError(f"reward {self.name!r}: {label} must be a metric name, got {value!r}")

    def __call__(self, measurement: Measurement) -> float:
        quality = _metric(measurement, self.metric)
        cost = _metric(measurement, self.cost)
        if not cost > 0:
            raise RewardError(f"reward {self.name!r}: cost {self.cost!r} must be positive, got {cost!r}")
        return _COST_FORMS[self.name](quality, cost / self.target, self.beta)

    def spec(self) -> dict[str, Any]:
        """The stored form."""
        return {"name": self.name, "metric": self.metric, "cost": self.cost, "target": float(self.target),
                "beta": float(self.beta)}

    @property
    def metrics(self) -> tuple[str, ...]:
        """Metrics the reward reads."""
        return (self.metric, self.cost)


_COST_FORMS: dict[str, Callable[[float, float, float], float]] = {
    "abs": lambda q, ratio, beta: q + beta * abs(ratio - 1.0),
    "soft": lambda q, ratio, beta: q * ratio ** beta,
    "hard": lambda q, ratio, beta: q * min(ratio ** beta, 1.0),
}


def _cost_aware(name: str) -> Callable[..., CostAwareReward]:
    def build(*, target: float, beta: float, metric: str = "valid_acc", cost: str = "latency_ms") -> CostAwareReward:
        return CostAwareReward(name, target, beta, metric, cost)

    build.__name__ = f"{name}_reward"
    return build


REWARDS: Registry[Callable[..., Any]] = Registry("reward", {
    "metric": MetricReward, "abs": _cost_aware("abs"), "soft": _cost_aware("soft"), "hard": _cost_aware("hard"),
})
"""Reward builders by name (keyword options as in the spec)."""

Reward = MetricReward | CostAwareReward


def create_reward(spec: str | Mapping[str, Any] | Reward | None = None) -> Reward:
    """The reward a spec describes: a metric name, a ``{"name": ..., **options}`` mapping, or a reward."""
    if spec is None:
        return MetricReward()
    if isinstance(spec, (MetricReward, CostAwareReward)):
        return spec
    if isinstance(spec, str):
        return MetricReward(spec)
    if not isinstance(spec, Mapping):
        raise ConfigError(f"reward must be a metric name or a mapping with a 'name', "
                          f"got {type(spec).__name__} {spec!r}")
    options = dict(spec)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"reward spec {dict(spec)!r} has no 'name' (choices: {', '.join(REWARDS.list())})")
    return REWARDS.create(name, **options)


def _metric(measurement: Measurement, name: str) -> float:
    try:
        value = measurement.metrics[name]
    except KeyError:
        raise RewardError(f"the evaluator reported no {name!r} metric "
                          f"(it reported: {', '.join(measurement.metrics) or 'none'})") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RewardError(f"metric {name!r} is {type(value).__name__} {value!r}, not a number")
    return float(value)


__all__ = ["MAX_REWARD", "REWARDS", "Reward", "RewardError", "MetricReward", "CostAwareReward", "create_reward"]
