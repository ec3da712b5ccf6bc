"""TuNAS (Bender et al., 2020): a factorized-softmax controller trained by REINFORCE while a
supernet trains, for one-shot search with a cost-aware reward.

The search is a sequence of rounds driven by a weight-sharing driver (see ``plan_round``):
one shared-weight step on a training batch, on the path :meth:`train_children` samples,
then, once the controller is on, one controller update from :meth:`ask`-ed paths scored on a
validation batch. The controller is off for the first ``rl_delay`` of the shared steps (the
supernet warms up on uniformly sampled paths). Each update:

    b  ← EMA(b, mean reward of the batch)             (bias-corrected, momentum 0.95)
    A  = R − b
    loss = −mean[A · log π(a)] − entropy_weight · H(π)

with Adam (β₁ = 0, β₂ = 0.999, as the TuNAS code) at a learning rate that grows
exponentially from ``lr`` when the controller starts to ``lr · lr_growth`` at the last step:
``lr(t) = lr · lr_growth^((t − t₀) / (T − 1 − t₀))``. A rising rate lets the controller explore
first and lowers its entropy by the end, so that the most likely architecture — the answer,
:meth:`mode` — has the cost the average sampled one was steered to.

The baseline is updated with the current batch before the advantage is taken (as in the
TuNAS code), so the very first update has zero advantage.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rlnas.agents.base import AgentConfig, Proposal, Result, WeightSharingAgent
from rlnas.agents.baselines import EMABaseline
from rlnas.agents.controllers import (
    MAX_BATCH,
    MAX_LR,
    FactorizedController,
    check_learnable_reward,
    check_lr_and_entropy,
    is_finite_number,
    make_generator,
)
from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate, Space

ADAM_BETAS = (0.0, 0.999)
"""Adam betas of the TuNAS controller (no first-moment averaging)."""


@dataclass
class TunasConfig(AgentConfig):
    """Options of the TuNAS controller."""

    lr: float = 0.05
    """Adam learning rate when the controller starts (TuNAS: 4.8e-3 for ~25k steps; 0.05 suits ~1k steps)."""
    lr_growth: float = 10.0
    """Factor the learning rate grows by, exponentially, from the controller's start to the end (1 = constant)."""
    baseline_decay: float = 0.95
    """Momentum of the bias-corrected EMA reward baseline."""
    batch_size: int = 1
    """Paths sampled and scored (each on its own validation batch) per controller update."""
    rl_delay: float = 0.25
    """Fraction of the shared-weight steps before the controller learns (warm-up on uniform paths)."""
    entropy_weight: float = 0.0
    """Weight of the entropy bonus in the controller loss (TuNAS: 0)."""

    def __post_init__(self) -> None:
        check_lr_and_entropy("tunas", self.lr, self.entropy_weight)
        if not is_finite_number(self.lr_growth) or not (0 < self.lr_growth and self.lr * self.lr_growth <= MAX_LR):
            raise ConfigError(f"tunas: lr_growth must be a positive number with lr · lr_growth at most {MAX_LR:g}, "
                              f"got {self.lr_growth!r}")
        if not is_finite_number(self.baseline_decay) or not 0 <= self.baseline_decay < 1:
            raise ConfigError(f"tunas: baseline_decay must be in [0, 1), got {self.baseline_decay!r}")
        size = self.batch_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_BATCH:
            raise ConfigError(f"tunas: batch_size must be an integer from 1 to {MAX_BATCH:,}, got {self.batch_size!r}")
        if not is_finite_number(self.rl_delay) or not 0 <= self.rl_delay < 1:
            raise ConfigError(f"tunas: rl_delay must be in [0, 1), got {self.rl_delay!r}")


class TunasAgent(WeightSharingAgent):
    """TuNAS's controller: factorized softmax (zero logits), REINFORCE, momentum baseline, growing lr."""

    name = "tunas"
    Config = TunasConfig
    config: TunasConfig

    def __init__(self, space: Space, config: TunasConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu"):
        super().__init__(space, config, seed=seed, device=device)
        self.generator = make_generator(seed)
        self.controller = FactorizedController(space.sizes)
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=self.config.lr, betas=ADAM_BETAS)
        self.baseline = EMABaseline(self.config.baseline_decay)
        self.step = 0
        self.total_steps = 1
        self.updates = 0

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    # --------------------------------------------------------------- schedule
    def rl_start(self, total_steps: int) -> int:
        """The shared step from which the controller learns: ``floor(rl_delay · total_steps)``."""
        return int(self.config.rl_delay * total_steps)

    def learning_rate(self, step: int, total_steps: int) -> float:
        """Controller learning rate at shared step ``step`` (0 before :meth:`rl_start`)."""
        start = self.rl_start(total_steps)
        if step < start:
            return 0.0
        progress = min(1.0, (step - start) / max(1, total_steps - 1 - start))
        return self.config.lr * self.config.lr_growth ** progress

    def plan_round(self, step: int, total_steps: int, steps_per_epoch: int) -> tuple[int, int]:
        """One shared step, then one controller update once the controller is on: ``(1, 0)`` or ``(1, 1)``.

        ``step`` is the number of shared steps done; ``steps_per_epoch`` is not needed here.
        """
        self.step, self.total_steps = int(step), int(total_steps)
        return 1, int(step >= self.rl_start(total_steps))

    # --------------------------------------------------------------- sampling
    def _sample(self, n: int) -> list[Proposal]:
        with torch.no_grad():
            indices, log_prob, _ = self.controller.sample(n, self.generator)
        return [Proposal(self.space.from_indices(row), {"indices": row, "log_prob": lp})
                for row, lp in zip(indices.tolist(), log_prob.tolist())]

    def train_children(self, n: int) -> list[Candidate]:
        """The paths the next ``n`` shared-weight steps train: samples of the current policy."""
        return [p.candidate for p in self._sample(n)]

    def ask(self, n: int = 1) -> list[Proposal]:
        """``n`` paths for a controller update; ``info`` holds their choice indices and log-probability."""
        return self._sample(n)

    def mode(self) -> Candidate:
        """The most probable choice of every decision: the search's answer."""
        with torch.no_grad():
            return self.space.from_indices(self.controller.mode().tolist())

    def entropy(self) -> float:
        """Entropy of the policy (nats): ``Σ log kᵢ`` at the start, 0 when every decision is certain."""
        with torch.no_grad():
            return float(self.controller.entropy())

    # ------------------------------------------------------------------- tell
    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """One REINFORCE step on the told paths (failed ones, reward ``None``, are left out).

        Returns the diagnostics: ``loss``, ``entropy`` (before the step), ``baseline``,
        ``reward_mean``, ``advantage_mean``, ``advantage_std``, ``lr``, ``step``; ``{}`` when
        no result had a reward.
        """
        batch = [(p, check_learnable_reward(self.name, float(r))) for p, r in results
                 if r is not None and math.isfinite(r)]
        if not batch:
            return {}
        rewards = torch.tensor([r for _, r in batch], dtype=torch.float32)
        self.baseline.update([float(rewards.mean())])
        advantage = rewards - float(self.baseline.value)
        indices = torch.tensor([list(self.space.indices(p.candidate)) for p, _ in batch], dtype=torch.long)
        log_prob, entropy = self.controller.log_prob_and_entropy(indices)
        loss = -(advantage * log_prob).mean()
        if self.config.entropy_weight > 0:
            loss = loss - self.config.entropy_weight * entropy.mean()
        lr = self.learning_rate(self.step, self.total_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        return {
            "loss": loss.item(), "entropy": float(entropy[0].detach()), "baseline": float(self.baseline.value),
            "reward_mean": float(rewards.mean()), "advantage_mean": float(advantage.mean()),
            "advantage_std": float(advantage.std()) if len(batch) > 1 else 0.0, "lr": lr, "step": float(self.step),
        }

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline.state_dict(), "generator": self.generator.get_state(),
            "step": self.step, "total_steps": self.total_steps, "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline.load_state_dict(state["baseline"])
        self.generator.set_state(state["generator"])
        self.step, self.total_steps, self.updates = int(state["step"]), int(state["total_steps"]), int(state["updates"])

    def load_policy(self, state: Mapping[str, Any]) -> None:
        """Policy transfer: start from another search's logits (baseline, optimizer and RNG start fresh)."""
        self.controller.load_state_dict(state["controller"])
