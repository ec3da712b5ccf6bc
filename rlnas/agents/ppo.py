"""Proximal Policy Optimization (Schulman et al., 2017) for a NAS controller (ENAS-PPO).

Architecture search is a one-step, stateless episode: the controller samples a candidate
(its whole sequence of decisions is one action), the evaluator returns one reward. Every
``batch_size`` successful trials the agent runs ``epochs`` full-batch Adam steps on

    loss = policy_loss − entropy_weight · entropy (+ value_loss on the value parameter)
    policy_loss = mean[ max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)) ],   ρ = π(a) / π_old(a)

with ``π_old`` the log-probability recorded when the candidate was sampled (``info``),
and advantages ``A = R − b``, divided by their batch standard deviation (the mean is not
subtracted unless ``center_advantages``, so the baseline decides which candidates are
reinforced and which are discouraged). The baseline ``b`` is either
the bias-corrected EMA of past rewards ("ema") or a learned scalar value ("value"): with no
state to condition on, a value head reduces to one parameter fitted to the rewards by MSE.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from rlnas.agents.base import AgentConfig, Result
from rlnas.agents.baselines import EMABaseline
from rlnas.agents.controllers import MAX_LR, Controller, is_finite_number
from rlnas.agents.policy_gradient import ControllerAgent, ControllerConfig, Sampled
from rlnas.errors import ConfigError
from rlnas.spaces.base import Space

BASELINES = ("ema", "value")


MAX_EPOCHS = 1000
"""Most optimisation epochs per batch (each is a full-batch step; 1e8 made the first update hang)."""


@dataclass
class PPOConfig(ControllerConfig):
    """Options of PPO (the shared controller options are documented on ControllerConfig)."""

    DEFAULT_LR: ClassVar[dict[str, float]] = {"factorized": 0.05, "lstm": 0.01}
    """Learning rate used when ``lr`` is null, per controller (tuned on NAS-Bench-201)."""
    AGENT: ClassVar[str] = "ppo"

    batch_size: int = 10
    """Successful trials per update (and proposals asked at once)."""
    epochs: int = 4
    """Full-batch optimisation epochs per update."""
    clip: float = 0.2
    """Clipping range epsilon of the probability ratio."""
    baseline: str = "ema"
    """Reward baseline: "ema" (moving average of rewards) or "value" (learned scalar value, MSE)."""
    value_lr: float = 0.1
    """Adam learning rate of the scalar value (baseline="value"); it starts at the first batch's mean reward."""
    max_grad_norm: float | None = 0.5
    """Clip the controller's gradient to this global norm; null = no clipping."""
    normalize_advantages: bool = True
    """Divide advantages by their standard deviation within each batch (the baseline still sets their sign; a
    batch of equal rewards, with no spread, is left as it is)."""
    center_advantages: bool = False
    """Also subtract the batch mean before dividing (full standardisation; this cancels the baseline)."""
    entropy_weight: float = 0.01
    """Weight of the entropy bonus in the loss (0 disables it)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 1 <= self.epochs <= MAX_EPOCHS:
            raise ConfigError(f"ppo: epochs must be an integer from 1 to {MAX_EPOCHS:,}, got {self.epochs!r}")
        if not is_finite_number(self.clip) or not 0 < self.clip < 1:
            raise ConfigError(f"ppo: clip must be in (0, 1), got {self.clip!r}")
        if self.baseline not in BASELINES:
            raise ConfigError(f"ppo: unknown baseline {self.baseline!r} (choices: {', '.join(BASELINES)})")
        if not is_finite_number(self.value_lr) or not 0 < self.value_lr <= MAX_LR:
            raise ConfigError(f"ppo: value_lr must be a number in (0, {MAX_LR:g}], got {self.value_lr!r}")
        if self.max_grad_norm is not None and (not is_finite_number(self.max_grad_norm) or not self.max_grad_norm > 0):
            raise ConfigError(f"ppo: max_grad_norm must be a positive number or null, got {self.max_grad_norm!r}")
        for name in ("normalize_advantages", "center_advantages"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"ppo: {name} must be true or false, got {getattr(self, name)!r}")


class PPOAgent(ControllerAgent):
    """PPO with a clipped surrogate over a factorized or LSTM controller."""

    name = "ppo"
    Config = PPOConfig
    config: PPOConfig

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> None:
        super().__init__(space, config, seed=seed, device=device)
        cfg = self.config
        self._build_controller()
        self.value = nn.Parameter(torch.zeros(()))
        self.value_ready = False
        groups = [{"params": list(self.controller.parameters()), "lr": cfg.lr}]
        if cfg.baseline == "value":
            groups.append({"params": [self.value], "lr": cfg.value_lr})
        self.optimizer = torch.optim.Adam(groups)
        self.ema = EMABaseline(cfg.baseline_decay)
        # Successful results waiting for a full batch: (indices, reward, log-prob when sampled or None).
        self.pending: list[Sampled] = []
        self.told = 0
        self.updates = 0

    # ----------------------------------------------------------------- tell
    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Queue results; update once ``batch_size`` are queued. Failures are skipped (or learned as ``fail_reward``).

        Returns the update's diagnostics, or ``{}`` when no update happened.
        """
        batch = self.queue_batch(results)
        return {} if batch is None else self.update(batch)

    def update(self, batch: list[Sampled]) -> dict[str, float]:
        """``epochs`` clipped-surrogate steps on one batch of (indices, reward, sampling log-prob)."""
        cfg = self.config
        indices = torch.tensor([ix for ix, _, _ in batch], dtype=torch.long)
        reward = torch.tensor([r for _, r, _ in batch], dtype=torch.float32)
        old_log_prob = sampling_log_probs(self.controller, indices, [lp for _, _, lp in batch])

        baseline = self.baseline_value(reward)
        advantage = reward - baseline
        scaled = advantage
        if cfg.center_advantages and len(batch) > 1:
            scaled = scaled - scaled.mean()
        if cfg.normalize_advantages and len(batch) > 1:
            spread = advantage.std()
            # equal rewards (a converged controller on a table) have no spread: dividing by ~0 would turn a
            # difference of 0.01 from the baseline into a step as large as the gradient clip allows
            if spread > 1e-6 * max(1.0, advantage.abs().max().item()):
                scaled = scaled / spread

        def value_loss() -> tuple[torch.Tensor, dict[str, float]]:
            loss = (self.value - reward).pow(2).mean()
            return loss, {"value_loss": loss.item()}

        diagnostics = clipped_surrogate_update(
            self.controller, self.optimizer, indices, scaled, old_log_prob, epochs=cfg.epochs, clip=cfg.clip,
            entropy_weight=cfg.entropy_weight, max_grad_norm=cfg.max_grad_norm,
            extra_loss=value_loss if cfg.baseline == "value" else None)
        self.updates += 1
        return diagnostics | {
            "baseline": baseline, "advantage_mean": advantage.mean().item(),
            "advantage_std": advantage.std().item() if len(batch) > 1 else 0.0,
            "reward_mean": reward.mean().item(),
        }

    def baseline_value(self, reward: torch.Tensor) -> float:
        """The baseline for this batch (from past batches only; the first batch uses its own mean)."""
        if self.config.baseline == "value":
            if not self.value_ready:
                with torch.no_grad():
                    self.value.fill_(reward.mean())
                self.value_ready = True
            return self.value.item()
        baseline = self.ema.value
        self.ema.update(reward.tolist())
        return float(reward.mean()) if baseline is None else baseline

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "value": self.value.detach().clone(),
            "value_ready": self.value_ready,
            "optimizer": self.optimizer.state_dict(),
            "ema": self.ema.state_dict(),
            "generator": self.generator.get_state(),
            "pending": [[list(ix), r, lp] for ix, r, lp in self.pending],
            "told": self.told,
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        with torch.no_grad():
            self.value.copy_(state["value"])
        self.value_ready = bool(state["value_ready"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.ema.load_state_dict(state["ema"])
        self.generator.set_state(state["generator"])
        self.pending = [([int(i) for i in ix], float(r), None if lp is None else float(lp))
                        for ix, r, lp in state["pending"]]
        self.told = int(state["told"])
        self.updates = int(state["updates"])


ExtraLoss = Callable[[], tuple[torch.Tensor, dict[str, float]]]
"""A loss term added at every epoch, with the diagnostics it reports (the last epoch's are kept)."""


def sampling_log_probs(controller: Controller, indices: torch.Tensor, recorded: Sequence[float | None]) -> torch.Tensor:
    """The log-probabilities recorded when each row of ``indices`` was sampled; a row recorded
    without one is scored as if sampled by the current policy."""
    with torch.no_grad():
        current, _ = controller.log_prob_and_entropy(indices)
    return torch.tensor([current[i].item() if lp is None else lp for i, lp in enumerate(recorded)])


def clipped_surrogate_update(controller: Controller, optimizer: torch.optim.Optimizer, indices: torch.Tensor,
                             advantage: torch.Tensor, old_log_prob: torch.Tensor, *, epochs: int, clip: float,
                             entropy_weight: float = 0.0, max_grad_norm: float | None = None,
                             extra_loss: ExtraLoss | None = None) -> dict[str, float]:
    """``epochs`` full-batch steps of ``optimizer`` on PPO's clipped surrogate (see the module docstring).

    Returns ``loss`` and ``policy_loss`` (last epoch), ``entropy`` (mean, first epoch),
    ``approx_kl`` (of the updated policy against the sampling one) and ``clip_fraction`` (share
    of clipped ratios, averaged over epochs), plus what ``extra_loss`` reports.
    """
    clipped, extra = [], {}
    for epoch in range(epochs):
        log_prob, entropy = controller.log_prob_and_entropy(indices)
        ratio = torch.exp(log_prob - old_log_prob)
        policy_loss = torch.max(-advantage * ratio, -advantage * ratio.clamp(1 - clip, 1 + clip)).mean()
        entropy_bonus = entropy.mean()
        loss = policy_loss
        if entropy_weight > 0:  # otherwise keep the entropy out of the backward pass
            loss = loss - entropy_weight * entropy_bonus
        if extra_loss is not None:
            term, extra = extra_loss()
            loss = loss + term
        if epoch == 0:
            start_entropy = entropy_bonus.item()
        clipped.append(((ratio.detach() - 1).abs() > clip).float().mean().item())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(controller.parameters(), max_grad_norm)
        optimizer.step()
    return {"loss": loss.item(), "policy_loss": policy_loss.item(), "entropy": start_entropy,
            "approx_kl": approx_kl(controller, indices, old_log_prob), "clip_fraction": sum(clipped) / len(clipped),
            **extra}


def approx_kl(controller: Controller, indices: torch.Tensor, old_log_prob: torch.Tensor) -> float:
    """``mean((ρ − 1) − log ρ)``: an unbiased, non-negative estimate of KL(old ‖ current) from
    samples of the old policy."""
    with torch.no_grad():
        log_ratio = controller.log_prob_and_entropy(indices)[0] - old_log_prob
    return ((log_ratio.exp() - 1) - log_ratio).mean().item()
