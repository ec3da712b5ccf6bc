"""Regularized evolution (aging evolution; Real et al., 2019).

A fixed-size population is a queue ordered by age. Until it is full, proposals are uniform
random. Afterwards each proposal is a mutation of a tournament winner: draw ``sample_size``
members uniformly (with replacement, as in the paper's algorithm), take the one with the
highest reward, and change exactly one of its decisions to a different choice. Every told
result joins the population and the *oldest* member leaves, whatever its reward: this aging
is what "regularized" refers to. The defaults (population 10, sample 3) are NATS-Bench's REA.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlnas.agents.base import Agent, AgentConfig, Proposal, Result, rng_state, set_rng_state
from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate, Space

Member = tuple[tuple[int, ...], float]
"""A population member: choice indices of the candidate and its reward."""


@dataclass
class EvolutionConfig(AgentConfig):
    """Options of regularized evolution."""

    population_size: int = 10
    """Members kept alive; the first this many proposals are uniform random."""
    sample_size: int = 3
    """Tournament size: members drawn (with replacement) to pick the parent to mutate."""

    def __post_init__(self) -> None:
        for name in ("population_size", "sample_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"evolution: {name} must be a positive integer, got {value!r}")
        if self.sample_size > self.population_size:
            raise ConfigError(f"evolution: sample_size ({self.sample_size}) must not exceed "
                              f"population_size ({self.population_size})")


class EvolutionAgent(Agent):
    """Regularized (aging) evolution with tournament selection and one-decision mutations."""

    name = "evolution"
    Config = EvolutionConfig
    config: EvolutionConfig

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> None:
        super().__init__(space, config, seed=seed, device=device)
        self.rng = np.random.default_rng(seed)
        self.population: deque[Member] = deque()
        self.told = 0
        self.transferred: list[list[int]] = []  # architectures from --init-from, proposed first

    # ------------------------------------------------------------------ ask
    def ask(self, n: int = 1) -> list[Proposal]:
        """``n`` proposals: random while the population is not full, mutated tournament winners after."""
        proposals = []
        for _ in range(n):
            if len(self.population) < self.config.population_size and self.transferred:
                proposals.append(Proposal(self.space.from_indices(self.transferred.pop(0)), {"origin": "transferred"}))
            elif len(self.population) < self.config.population_size:
                proposals.append(Proposal(self.space.sample(self.rng), {"origin": "random"}))
            else:
                parent = self.tournament()
                child, decision = self.mutate(parent)
                proposals.append(Proposal(child, {"origin": "mutation", "decision": decision}))
        return proposals

    def tournament(self) -> tuple[int, ...]:
        """Choice indices of the best of ``sample_size`` members drawn uniformly with replacement."""
        picks = self.rng.integers(len(self.population), size=self.config.sample_size)
        # max() keeps the first of equal rewards, so ties go to the earliest draw.
        best = max((self.population[int(i)] for i in picks), key=lambda member: member[1])
        return best[0]

    def mutate(self, indices: Sequence[int]) -> tuple[Candidate, str | None]:
        """Change one uniformly chosen decision to a different, uniformly chosen choice.

        Returns the child and the mutated decision's name (``None`` when no decision has
        a second choice, in which case the child equals the parent).
        """
        mutable = [i for i, size in enumerate(self.space.sizes) if size > 1]
        child = list(indices)
        if not mutable:
            return self.space.from_indices(child), None
        d = mutable[int(self.rng.integers(len(mutable)))]
        # Draw among the size - 1 other choices, then skip over the current one.
        new = int(self.rng.integers(self.space.sizes[d] - 1))
        child[d] = new + (new >= child[d])
        return self.space.from_indices(child), self.space.decisions[d].name

    # ----------------------------------------------------------------- tell
    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Add every evaluated candidate (failures, and NaN or infinite rewards, excluded); the oldest members leave."""
        for proposal, reward in results:
            self.told += 1
            if reward is None or not math.isfinite(reward):
                continue
            self.population.append((self.space.indices(proposal.candidate), float(reward)))
            while len(self.population) > self.config.population_size:
                self.population.popleft()
        if not self.population:
            return {"population": 0.0}
        rewards = [r for _, r in self.population]
        return {"population": float(len(rewards)), "population_best": max(rewards),
                "population_mean": float(np.mean(rewards))}

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self.rng),
            "population": [list(indices) for indices, _ in self.population],
            "rewards": [reward for _, reward in self.population],
            "told": self.told,
            "transferred": [list(ix) for ix in self.transferred],
        }

    def load_policy(self, state: Mapping[str, Any]) -> None:
        """Policy transfer: the other search's final population, best first, is proposed (and so
        measured on this task) before any random candidate. Its rewards are not reused: they
        were measured on another task, on another scale."""
        ranked = sorted(zip(state["population"], state["rewards"]), key=lambda member: -float(member[1]))
        self.transferred = [list(self.space.indices(self.space.from_indices(ix))) for ix, _ in ranked]

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        population, rewards = list(state["population"]), list(state["rewards"])
        if len(population) != len(rewards):
            raise ConfigError(f"evolution state: {len(population)} members but {len(rewards)} rewards")
        members = [(self.space.indices(self.space.from_indices(ix)), float(r)) for ix, r in zip(population, rewards)]
        set_rng_state(self.rng, state["rng"])
        self.population = deque(members)
        self.told = int(state["told"])
        self.transferred = [[int(i) for i in ix] for ix in state.get("transferred", [])]
