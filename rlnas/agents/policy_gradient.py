"""What REINFORCE and PPO share: a seeded controller that samples proposals and can be transferred."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rlnas.agents.base import Agent, AgentConfig, Proposal, Result
from rlnas.agents.controllers import (
    MAX_REWARD,
    build_controller,
    check_controller_options,
    check_learnable_reward,
    is_finite_number,
    make_generator,
)
from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate

Sampled = tuple[list[int], float, float | None]
"""A told result waiting for a policy update (PPO, ENAS): its choice indices, the reward learned from it and
the log-probability it was sampled with (``None`` when the proposal did not carry one)."""


@dataclass
class ControllerConfig(AgentConfig):
    """Options every controller agent has; subclasses add their own and set ``DEFAULT_LR``."""

    DEFAULT_LR: ClassVar[dict[str, float]] = {}
    AGENT: ClassVar[str] = ""

    controller: str = "factorized"
    """Policy network: "factorized" (independent softmax per decision) or "lstm" (autoregressive)."""
    lr: float | None = None
    """Adam learning rate of the controller; null = the controller's default (see DEFAULT_LR)."""
    batch_size: int = 1
    """Successful trials per policy update (and proposals asked at once)."""
    baseline_decay: float = 0.9
    """Momentum of the bias-corrected EMA reward baseline."""
    entropy_weight: float = 0.0
    """Weight of the entropy bonus in the loss (0 disables it)."""
    lstm_hidden: int = 64
    """Hidden size of the LSTM controller (and of its choice embeddings)."""
    temperature: float | None = 5.0
    """LSTM only: divide logits by this before the tanh (ENAS's 5 by default); null = off."""
    tanh_constant: float | None = 2.5
    """LSTM only: logits become tanh_constant * tanh(logits) (ENAS's 2.5 by default); null = off."""
    fail_reward: float | None = None
    """Reward learned from a failed trial (e.g. 0 for a diverged update rule); null = failed trials are skipped."""

    def __post_init__(self) -> None:
        if self.lr is None and self.controller in self.DEFAULT_LR:
            self.lr = self.DEFAULT_LR[self.controller]
        check_controller_options(self.AGENT, self.controller, self.lr, self.lstm_hidden, self.temperature,
                                 self.tanh_constant, self.entropy_weight, self.batch_size, self.baseline_decay)
        if self.fail_reward is not None and (not is_finite_number(self.fail_reward)
                                             or abs(self.fail_reward) > MAX_REWARD):
            raise ConfigError(f"{self.AGENT}: fail_reward must be a number in [-{MAX_REWARD:g}, {MAX_REWARD:g}] or "
                              f"null, got {self.fail_reward!r}")


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

    def learned_reward(self, reward: float | None) -> float | None:
        """The reward to learn from: ``reward``, or ``fail_reward`` for a failed trial (``None``: skip it)."""
        if reward is None or not math.isfinite(reward):
            return self.config.fail_reward
        return check_learnable_reward(self.name, float(reward))

    def queue_batch(self, results: Sequence[Result]) -> list[Sampled] | None:
        """(PPO, ENAS) Append told results to ``self.pending`` as (choice indices, learned reward, sampling log-prob or
        ``None``), counting them in ``self.told``; a failure whose ``learned_reward`` is ``None`` is skipped.
        Returns the batch to update on, taken out of ``pending``, once ``batch_size`` are queued, else ``None``."""
        for proposal, told in results:
            self.told += 1
            reward = self.learned_reward(told)
            if reward is None:
                continue
            old = proposal.info.get("log_prob") if isinstance(proposal.info, Mapping) else None
            self.pending.append((list(self.space.indices(proposal.candidate)), reward,
                                 None if old is None else float(old)))
        if not self.pending or len(self.pending) < self.config.batch_size:
            return None
        batch, self.pending = self.pending, []
        return batch

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
