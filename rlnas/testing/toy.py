"""A toy space with a known optimum and its closed-form evaluator.

The reward of a candidate is the share of decisions that equal a hidden target, plus a
small smooth bonus for choices near the target's index, so every agent gets a useful signal
and the optimum (the target, reward 1.0) is known exactly.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.evaluators.base import Measurement
from rlnas.spaces.base import Candidate, Categorical, Space


def toy_space(decisions: int = 4, choices: int = 5) -> Space:
    """``decisions`` decisions named ``d0, d1, ...`` with choices ``0 .. choices-1``."""
    if decisions < 1 or choices < 2:
        raise ConfigError("a toy space needs at least 1 decision and 2 choices")
    return Space(f"toy_{decisions}x{choices}", [Categorical(f"d{i}", tuple(range(choices))) for i in range(decisions)])


class ToyEvaluator:
    """``valid_acc = 100 · (0.9 · matches/n + 0.1 · mean closeness)``; the target scores exactly 100.

    ``target`` defaults to choice ``i % choices`` for decision ``i`` (never all zeros, so an
    agent biased to the first choice does not win by accident). ``cost_seconds`` is 1 per trial.
    """

    def __init__(self, decisions: int = 4, choices: int = 5, target: Sequence[int] | None = None):
        self.space = toy_space(decisions, choices)
        default = [(i + 1) % choices for i in range(decisions)]
        self.target = tuple(int(t) for t in (target if target is not None else default))
        if len(self.target) != decisions:
            raise ConfigError(f"target must have {decisions} entries, got {len(self.target)}")
        self.decisions, self.choices = decisions, choices

    @property
    def optimum(self) -> Candidate:
        """The candidate with the highest reward."""
        return self.space.from_indices(self.target)

    def reward_of(self, candidate: Candidate) -> float:
        """Closed-form reward in percent."""
        if set(candidate) != {d.name for d in self.space.decisions}:
            raise InvalidCandidate(f"candidate is not of space {self.space.name!r}")
        idx = np.array(self.space.indices(candidate))
        target = np.array(self.target)
        matches = float(np.mean(idx == target))
        closeness = float(np.mean(1.0 - np.abs(idx - target) / (self.choices - 1)))
        return 100.0 * (0.9 * matches + 0.1 * closeness)

    def random_mean(self) -> float:
        """Exact mean reward of a uniformly random candidate (every candidate scored once)."""
        every = itertools.product(*(range(k) for k in self.space.sizes))
        return float(np.mean([self.reward_of(self.space.from_indices(ix)) for ix in every]))

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        """Score ``candidate``; ``test_acc`` equals ``valid_acc`` minus one point."""
        value = self.reward_of(candidate)
        return Measurement({"valid_acc": value, "test_acc": value - 1.0}, cost_seconds=1.0)

    def spec(self) -> dict[str, Any]:
        return {"name": "toy", "decisions": self.decisions, "choices": self.choices, "target": list(self.target)}


def per_trial_agents() -> list[str]:
    """Registered agents that propose one candidate per trial for any evaluator: every agent but
    the weight-sharing ones, which need a supernet evaluator (agent suites run these)."""
    from rlnas.agents import agent_class, list_agents
    from rlnas.agents.base import WeightSharingAgent

    return [name for name in list_agents() if not issubclass(agent_class(name), WeightSharingAgent)]
