"""Random search: every proposal is drawn uniformly from the space."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlnas.agents.base import Agent, AgentConfig, Proposal, Result, rng_state, set_rng_state
from rlnas.spaces.base import Space


@dataclass
class RandomConfig(AgentConfig):
    """Random search has no options."""


class RandomAgent(Agent):
    """Uniform sampling; ``tell`` only counts what it was told."""

    name = "random"
    Config = RandomConfig

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> None:
        super().__init__(space, config, seed=seed, device=device)
        self.rng = np.random.default_rng(seed)
        self.told = 0

    def ask(self, n: int = 1) -> list[Proposal]:
        return [Proposal(self.space.sample(self.rng)) for _ in range(n)]

    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        self.told += len(results)
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng), "told": self.told}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
        self.told = int(state["told"])
