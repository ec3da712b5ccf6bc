"""An agent that always proposes one given architecture: a study that evaluates a known candidate.

``rlnas retrain`` uses it to train the answer of a search from scratch as a study of its own
(one trial, stored like any other: ``show``, ``best`` and ``export`` work on it).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rlnas.agents.base import Agent, AgentConfig, Proposal, Result
from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.spaces.base import Candidate, Space


@dataclass
class FixedConfig(AgentConfig):
    """Options of the fixed agent."""

    key: str | None = None
    """Key (``space.key``) of the architecture to propose; null = the first choice of every decision. A
    space whose keys are JSON lists (``nbgraph``, the generic one) also takes the list itself, and
    ``optimizer_rules`` a rule's name (``adam``)."""

    def __post_init__(self) -> None:
        if isinstance(self.key, (list, tuple)):  # --set key='["0000","gcn",...]' parses to a list
            self.key = json.dumps(list(self.key), separators=(",", ":"))


class FixedAgent(Agent):
    """Proposes the configured architecture every time and learns nothing."""

    name = "fixed"
    Config = FixedConfig
    config: FixedConfig

    def __init__(self, space: Space, config: FixedConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu"):
        super().__init__(space, config, seed=seed, device=device)
        key = self.config.key
        if key is None:
            self.candidate: Candidate = space.from_indices([0] * len(space.sizes))
        else:
            try:
                self.candidate = space.from_key(key)
            except InvalidCandidate as exc:
                raise ConfigError(f"fixed: {exc}") from None

    def ask(self, n: int = 1) -> list[Proposal]:
        """``n`` proposals of the configured architecture."""
        return [Proposal(self.candidate) for _ in range(n)]

    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Nothing to learn."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        return None
