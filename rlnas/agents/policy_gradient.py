"""What REINFORCE and PPO share: a seeded controller that samples proposals and can be transferred."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from rlnas.agents.base import Agent, Proposal
from rlnas.agents.controllers import build_controller, make_generator
from rlnas.spaces.base import Candidate


class ControllerAgent(Agent):
    """Base of agents whose policy is a controller over choice indices.

    The config must have ``controller``, ``lstm_hidden``, ``temperature``, ``tanh_constant``
    and ``batch_size``. All sampling uses the agent's own ``torch.Generator``.
    """

    def _build_controller(self) -> None:
        """Create ``self.generator`` (seeded) and ``self.controller`` (initialised from it)."""
        cfg = self.config
        self.generator = make_generator(self.seed)
        self.controller = build_controller(cfg.controller, self.space.sizes, hidden=cfg.lstm_hidden,
                                           temperature=cfg.temperature, tanh_constant=cfg.tanh_constant,
                                           generator=self.generator)

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def ask(self, n: int = 1) -> list[Proposal]:
        """Sample ``n`` candidates; ``info`` holds their choice indices and sampling log-probability."""
        with torch.no_grad():
            indices, log_prob, _ = self.controller.sample(n, self.generator)
        return [Proposal(self.space.from_indices(row), {"indices": row, "log_prob": lp})
                for row, lp in zip(indices.tolist(), log_prob.tolist())]

    def mode(self) -> Candidate:
        """The controller's greedy (most probable, for the factorized one) candidate."""
        with torch.no_grad():
            return self.space.from_indices(self.controller.mode().tolist())

    def load_policy(self, state: Mapping[str, Any]) -> None:
        """Policy transfer: take the controller's weights; baselines, optimizer and RNG start fresh
        (rewards on another data set live on another scale)."""
        self.controller.load_state_dict(state["controller"])
