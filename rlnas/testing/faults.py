"""Evaluators that misbehave on purpose (slow, hanging, dying, returning odd results) or count,
for executor, lease and fault tests.

All are module-level classes of options only, so they pickle to worker processes and Ray.
Each wraps the toy evaluator (:class:`~rlnas.testing.toy.ToyEvaluator`, 4 decisions x 5 choices).
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Measurement
from rlnas.spaces.base import Candidate
from rlnas.testing.toy import ToyEvaluator


class SlowToyEvaluator(ToyEvaluator):
    """The toy evaluator taking ``delay`` seconds, or a seeded random time up to ``delay`` with
    ``jitter`` (so that parallel results come back out of order)."""

    def __init__(self, delay: float = 0.1, jitter: bool = False, decisions: int = 4, choices: int = 5):
        super().__init__(decisions, choices)
        self.delay, self.jitter = float(delay), bool(jitter)

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        pause = self.delay * (np.random.default_rng(seed).random() if self.jitter else 1.0)
        time.sleep(pause)
        return super().evaluate(candidate)

    def spec(self) -> dict[str, Any]:
        return {"name": "slow_toy", "delay": self.delay, "jitter": self.jitter, "decisions": self.decisions,
                "choices": self.choices}


class HangingToyEvaluator(ToyEvaluator):
    """Hangs (sleeps ``hang`` seconds) on every candidate whose first choice is ``hang_on``."""

    def __init__(self, hang_on: int = 0, hang: float = 3600.0):
        super().__init__()
        self.hang_on, self.hang = hang_on, hang

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        if candidate["d0"] == self.hang_on:
            time.sleep(self.hang)
        return super().evaluate(candidate)

    def spec(self) -> dict[str, Any]:
        return {"name": "hanging_toy", "hang_on": self.hang_on, "hang": self.hang}


class DyingToyEvaluator(ToyEvaluator):
    """Kills its own process on candidates whose first choice is ``die_on``: every time, or only
    the first time for each candidate when ``once_dir`` names a folder to remember it in."""

    def __init__(self, die_on: int = 0, once_dir: str | None = None):
        super().__init__()
        self.die_on, self.once_dir = die_on, once_dir

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        if candidate["d0"] == self.die_on:
            if self.once_dir is None:
                os._exit(17)
            marker = Path(self.once_dir) / f"{seed}.died"
            if not marker.exists():
                marker.touch()
                os._exit(17)
        return super().evaluate(candidate)

    def spec(self) -> dict[str, Any]:
        return {"name": "dying_toy", "die_on": self.die_on, "once_dir": self.once_dir}


_LOADS = 0
"""How many CountingToyEvaluator objects this process has unpickled."""


class CountingToyEvaluator(ToyEvaluator):
    """The toy evaluator reporting, in ``info``, its process and how often this process unpickled one."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        global _LOADS
        _LOADS += 1
        self.__dict__.update(state)

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        measured = super().evaluate(candidate)
        return Measurement(measured.metrics, measured.cost_seconds, {"pid": os.getpid(), "loads": _LOADS})

    def spec(self) -> dict[str, Any]:
        return {"name": "counting_toy"}


ODD_RESULTS = ("numpy_int_info", "text_metric", "text_cost", "nan_cost", "nan_metric", "inf_metric",
               "none", "float", "object_info", "huge_metric", "huge_cost", "unnamed_metric")


class OddResultEvaluator:
    """The toy evaluator returning, for every candidate, one kind of result a study must handle:
    a NumPy integer or an object in ``info``, a text metric, a text or NaN cost, a NaN or infinite
    non-reward metric, an integer too large for a float as a metric or as the cost, a metric whose name is
    not a string, ``None`` or a bare float instead of a :class:`Measurement`."""

    name = "odd_toy"

    def __init__(self, kind: str, decisions: int = 4, choices: int = 5):
        if kind not in ODD_RESULTS:
            raise ConfigError(f"odd evaluator: kind must be one of {', '.join(ODD_RESULTS)}, got {kind!r}")
        self.kind = kind
        self.toy = ToyEvaluator(decisions, choices)
        self.space = self.toy.space

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Any:
        """A result of the chosen kind around the toy reward."""
        value = self.toy.reward_of(candidate)
        metrics: dict[str, Any] = {"valid_acc": value, "test_acc": value - 1}
        cost: Any = 1.0
        info: dict[str, Any] = {}
        odd = {"numpy_int_info": lambda: info.update(count=np.int64(3)),
               "object_info": lambda: info.update(when=object()),
               "text_metric": lambda: metrics.update(test_acc="high"),
               "nan_metric": lambda: metrics.update(test_acc=float("nan")),
               "inf_metric": lambda: metrics.update(test_acc=float("inf")),
               "huge_metric": lambda: metrics.update(test_acc=10**400),
               "unnamed_metric": lambda: metrics.update({None: 1.0})}
        if self.kind in odd:
            odd[self.kind]()
        elif self.kind == "text_cost":
            cost = "1 second"
        elif self.kind == "nan_cost":
            cost = float("nan")
        elif self.kind == "huge_cost":
            cost = 10**400
        elif self.kind == "none":
            return None
        elif self.kind == "float":
            return value
        return Measurement(metrics, cost, info)

    def spec(self) -> dict[str, Any]:
        """Options for ``OddResultEvaluator(**options)``."""
        return {"name": self.name, "kind": self.kind, "decisions": self.toy.decisions, "choices": self.toy.choices}


__all__ = ["SlowToyEvaluator", "HangingToyEvaluator", "DyingToyEvaluator", "CountingToyEvaluator", "OddResultEvaluator"]
