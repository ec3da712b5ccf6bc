"""Reward baselines for policy-gradient agents.

The exponential moving average is bias-corrected (as in the NAS-Bench-101 / NATS-Bench
REINFORCE code): ``value = numerator / denominator`` with both terms decayed alike, so the
first reward is the baseline itself instead of being pulled towards an arbitrary start of 0.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class EMABaseline:
    """Bias-corrected exponential moving average of rewards.

    ``update(r)``: ``num ← decay·num + (1−decay)·r``, ``den ← decay·den + (1−decay)``;
    ``value = num / den`` (``None`` before the first reward).
    """

    def __init__(self, decay: float = 0.9):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"baseline decay must be in [0, 1), got {decay!r}")
        self.decay = float(decay)
        self.numerator = 0.0
        self.denominator = 0.0

    @property
    def value(self) -> float | None:
        """Current baseline, ``None`` until a reward was seen."""
        return self.numerator / self.denominator if self.denominator > 0.0 else None

    def update(self, rewards: Iterable[float]) -> None:
        """Fold ``rewards`` in, in order."""
        for reward in rewards:
            self.numerator = self.decay * self.numerator + (1.0 - self.decay) * float(reward)
            self.denominator = self.decay * self.denominator + (1.0 - self.decay)

    def state_dict(self) -> dict[str, Any]:
        """Plain floats."""
        return {"numerator": self.numerator, "denominator": self.denominator}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.numerator = float(state["numerator"])
        self.denominator = float(state["denominator"])
