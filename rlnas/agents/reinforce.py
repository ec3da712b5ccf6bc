"""REINFORCE (Williams, 1992) with an exponential-moving-average reward baseline.

The policy is a controller (factorized softmax per decision, or an autoregressive LSTM).
Every ``batch_size`` successful trials the controller takes one Adam step on

    loss = −mean[(R − b) · log π(a)] − entropy_weight · mean[H]

where ``b`` is the bias-corrected EMA of past rewards *before* this batch (so it does not
depend on the actions being scored; the very first batch uses its own mean reward), and
``H`` is the policy entropy. The defaults (factorized controller, Adam lr 0.01, EMA momentum
0.9, one proposal per update) are NATS-Bench's REINFORCE baseline.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from rlnas.agents.base import AgentConfig, Result
from rlnas.agents.baselines import EMABaseline
from rlnas.agents.controllers import MAX_REWARD_SCALE, is_finite_number
from rlnas.agents.policy_gradient import ControllerAgent, ControllerConfig
from rlnas.errors import ConfigError
from rlnas.spaces.base import Space


@dataclass
class ReinforceConfig(ControllerConfig):
    """Options of REINFORCE (the shared controller options are documented on ControllerConfig)."""

    DEFAULT_LR: ClassVar[dict[str, float]] = {"factorized": 0.01, "lstm": 0.005}
    """Learning rate used when ``lr`` is null, per controller (tuned on NAS-Bench-201)."""
    AGENT: ClassVar[str] = "reinforce"

    reward_scale: float = 1.0
    """Factor applied to advantages; only matters relative to entropy_weight (Adam ignores a constant scale)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not is_finite_number(self.reward_scale) or not 0 < self.reward_scale <= MAX_REWARD_SCALE:
            raise ConfigError(f"reinforce: reward_scale must be a number in (0, {MAX_REWARD_SCALE:g}], "
                              f"got {self.reward_scale!r}")


class ReinforceAgent(ControllerAgent):
    """REINFORCE with an EMA baseline over a factorized or LSTM controller."""

    name = "reinforce"
    Config = ReinforceConfig
    config: ReinforceConfig

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> None:
        super().__init__(space, config, seed=seed, device=device)
        cfg = self.config
        self._build_controller()
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=cfg.lr)
        self.baseline = EMABaseline(cfg.baseline_decay)
        self.pending: list[tuple[list[int], float]] = []
        self.told = 0
        self.updates = 0

    # ----------------------------------------------------------------- tell
    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Queue results; update once ``batch_size`` are queued. Failures are skipped (or learned as ``fail_reward``).

        Returns the update's diagnostics, or ``{}`` when no update happened.
        """
        for proposal, reward in results:
            self.told += 1
            learned = self.learned_reward(reward)
            if learned is not None:
                self.pending.append((list(self.space.indices(proposal.candidate)), learned))
        if not self.pending or len(self.pending) < self.config.batch_size:
            return {}
        batch, self.pending = self.pending, []
        return self.update([ix for ix, _ in batch], [r for _, r in batch])

    def update(self, indices: list[list[int]], rewards: list[float]) -> dict[str, float]:
        """One REINFORCE step on a batch of choice indices and their rewards."""
        reward = torch.tensor(rewards, dtype=torch.float32)
        baseline = self.baseline.value
        if baseline is None:
            baseline = float(reward.mean())
        advantage = (reward - baseline) * self.config.reward_scale
        self.baseline.update(rewards)

        log_prob, entropy = self.controller.log_prob_and_entropy(torch.tensor(indices, dtype=torch.long))
        policy_loss = -(advantage * log_prob).mean()
        entropy_bonus = entropy.mean()
        loss = policy_loss
        if self.config.entropy_weight > 0:  # otherwise keep the entropy out of the backward pass
            loss = loss - self.config.entropy_weight * entropy_bonus
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        n = len(rewards)
        return {
            "loss": loss.item(), "policy_loss": policy_loss.item(), "entropy": entropy_bonus.item(),
            "baseline": float(baseline), "advantage_mean": float(advantage.mean()),
            "advantage_std": float(advantage.std()) if n > 1 else 0.0, "reward_mean": float(reward.mean()),
        }

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline.state_dict(),
            "generator": self.generator.get_state(),
            "pending": [[list(ix), r] for ix, r in self.pending],
            "told": self.told,
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline.load_state_dict(state["baseline"])
        self.generator.set_state(state["generator"])
        self.pending = [([int(i) for i in ix], float(r)) for ix, r in state["pending"]]
        self.told = int(state["told"])
        self.updates = int(state["updates"])
