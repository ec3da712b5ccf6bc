"""ENAS (Pham et al., 2018): an LSTM controller for weight-sharing searches, trained with PPO or REINFORCE.

A search alternates rounds (:meth:`EnasAgent.plan_round`): ``epochs_per_round`` epochs of
shared-weight training, every minibatch on a child freshly sampled from the controller
(:meth:`~EnasAgent.train_children`), then ``controller_steps`` controller updates, each on
``batch_size`` children scored with the shared weights on a validation minibatch
(``ask`` / ``tell``). The weight-sharing driver runs the loop; the agent never sees the data.
Trials are recorded every ``record_every`` shared steps (the driver's default: one epoch), whether or
not a round ends there: a record inside a round changes nothing in the search, whose controller updates
come at the round's end.

Both algorithms learn from the same signal, as ENAS shapes it:

    R' = reward_scale · R + entropy_weight · H(a)      (H: entropy of the sampled path)
    A  = R' − b,   b = bias-corrected EMA of R' (decay ``baseline_decay``) over earlier batches

(the first batch uses its own mean), plus, in ``enas_macro``, ENAS's skip penalty
``skip_weight · mean over layers of Σ_j KL(π(skip from j) ‖ Bernoulli(skip_target))``
along the sampled paths, which keeps the share of skip connections near ``skip_target``.
They differ in the update:

* ``algo="reinforce"`` (the ENAS update): one Adam step on ``−mean(A · log π(a)) + penalty``.
* ``algo="ppo"``: ``ppo_epochs`` Adam steps on PPO's clipped surrogate (+ penalty) with the
  advantages standardised per batch, by :func:`rlnas.agents.ppo.clipped_surrogate_update`.

Defaults are ENAS's published controller settings: LSTM with 100 hidden units, logits
``2.5 · tanh(logits / 5)``, Adam 3.5e-4, entropy weight 1e-4, baseline decay 0.99, skip
target 0.4 with weight 0.8. ``reward_scale`` turns our accuracies in percent into ENAS's
fractions, so that the entropy and skip weights keep ENAS's meaning.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from rlnas.agents.base import Result, WeightSharingAgent
from rlnas.agents.baselines import EMABaseline
from rlnas.agents.controllers import MAX_REWARD_SCALE, is_finite_number
from rlnas.agents.policy_gradient import ControllerAgent, ControllerConfig, Sampled
from rlnas.agents.ppo import (
    ExtraLoss,
    approx_kl,
    clipped_surrogate_update,
    sampling_log_probs,
)
from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate, Space

ALGOS = ("ppo", "reinforce")
SKIP_DECISION = re.compile(r"l(\d+)_skip(\d+)")


@dataclass
class EnasConfig(ControllerConfig):
    """Options of ENAS (the shared controller options are documented on ControllerConfig)."""

    DEFAULT_LR: ClassVar[dict[str, float]] = {"lstm": 3.5e-4, "factorized": 3.5e-4}
    """ENAS's controller learning rate, for either controller."""
    AGENT: ClassVar[str] = "enas"

    algo: str = "ppo"
    """Controller update: "ppo" (clipped surrogate, several epochs per batch) or "reinforce" (ENAS)."""
    controller: str = "lstm"
    """Policy network: "lstm" (ENAS) or "factorized" (independent softmax per decision)."""
    batch_size: int = 10
    """Children per controller update (ENAS aggregated 10 in the micro and 20 in the macro search)."""
    baseline_decay: float = 0.99
    """Momentum of the bias-corrected EMA baseline of the shaped reward (ENAS: 0.99)."""
    entropy_weight: float = 1e-4
    """Weight of the sampled path's entropy added to the (scaled) reward (ENAS: 1e-4)."""
    lstm_hidden: int = 100
    """Hidden size of the LSTM controller (ENAS: 100)."""
    temperature: float | None = 5.0
    """Logits are divided by this before the tanh (ENAS: 5); null = off."""
    tanh_constant: float | None = 2.5
    """Logits become tanh_constant * tanh(logits) (ENAS: 2.5); null = off."""
    controller_steps: int = 30
    """Controller updates per round (ENAS: 30 in the micro, 50 in the macro search)."""
    epochs_per_round: int = 1
    """Epochs of shared-weight training per round (ENAS: 1)."""
    reward_scale: float = 0.01
    """Factor applied to told rewards (percent -> ENAS's fraction); matters relative to the entropy and skip weights."""
    skip_target: float = 0.4
    """enas_macro: the share of skip connections the skip penalty pulls towards (ENAS: 0.4)."""
    skip_weight: float = 0.8
    """enas_macro: weight of the skip penalty (ENAS: 0.8); 0 disables it."""
    ppo_epochs: int = 4
    """ppo: optimisation epochs per batch of children."""
    clip: float = 0.2
    """ppo: clipping range of the probability ratio (reinforce reports the share of children beyond it)."""
    normalize_advantages: bool | None = None
    """Standardise advantages per batch; null = yes for ppo, no for reinforce (ENAS)."""
    max_grad_norm: float | None = None
    """Clip the controller's gradient to this global norm; null = no clipping (ENAS)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.algo not in ALGOS:
            raise ConfigError(f"enas: unknown algo {self.algo!r} (choices: {', '.join(ALGOS)})")
        for name in ("controller_steps", "epochs_per_round", "ppo_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
                raise ConfigError(f"enas: {name} must be an integer from 1 to 100,000, got {value!r}")
        if not is_finite_number(self.reward_scale) or not 0 < self.reward_scale <= MAX_REWARD_SCALE:
            raise ConfigError(f"enas: reward_scale must be a number in (0, {MAX_REWARD_SCALE:g}], "
                              f"got {self.reward_scale!r}")
        if not is_finite_number(self.skip_target) or not 0 < self.skip_target < 1:
            raise ConfigError(f"enas: skip_target must be in (0, 1), got {self.skip_target!r}")
        if not is_finite_number(self.skip_weight) or self.skip_weight < 0:
            raise ConfigError(f"enas: skip_weight must be a number >= 0, got {self.skip_weight!r}")
        if not is_finite_number(self.clip) or not self.clip > 0:
            raise ConfigError(f"enas: clip must be a positive number, got {self.clip!r}")
        if self.normalize_advantages is not None and not isinstance(self.normalize_advantages, bool):
            raise ConfigError(f"enas: normalize_advantages must be true, false or null, "
                              f"got {self.normalize_advantages!r}")
        if self.max_grad_norm is not None and (not is_finite_number(self.max_grad_norm) or not self.max_grad_norm > 0):
            raise ConfigError(f"enas: max_grad_norm must be a positive number or null, got {self.max_grad_norm!r}")


def skip_groups(space: Space) -> list[list[int]]:
    """Positions of the skip decisions (``l{i}_skip{j}``, each a choice of two), grouped by layer
    ``i``; empty without any. A decision so named with another number of choices is a :class:`ConfigError`
    (the penalty compares each with a Bernoulli)."""
    groups: dict[int, list[int]] = {}
    for position, decision in enumerate(space.decisions):
        match = SKIP_DECISION.fullmatch(decision.name)
        if match:
            if decision.size != 2:
                raise ConfigError(f"enas: the skip penalty reads {decision.name!r} as a skip connection (off/on), "
                                  f"but it has {decision.size} choices; rename it or set skip_weight 0")
            groups.setdefault(int(match.group(1)), []).append(position)
    return [groups[layer] for layer in sorted(groups)]


class EnasAgent(ControllerAgent, WeightSharingAgent):
    """ENAS's controller for a weight-sharing search, updated by PPO or REINFORCE (see the module docstring)."""

    name = "enas"
    Config = EnasConfig
    config: EnasConfig

    def __init__(self, space: Space, config: EnasConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu"):
        super().__init__(space, config, seed=seed, device=device)
        cfg = self.config
        self._build_controller()
        self.optimizer = torch.optim.Adam(self.controller.parameters(), lr=cfg.lr)
        self.baseline = EMABaseline(cfg.baseline_decay)
        self.skip_groups = skip_groups(space) if cfg.skip_weight > 0 else []
        self.log_skip_target = torch.log(torch.tensor([1 - cfg.skip_target, cfg.skip_target]))
        self.normalize = cfg.algo == "ppo" if cfg.normalize_advantages is None else cfg.normalize_advantages
        # Successful children waiting for a full batch: (indices, reward, log-prob when sampled or None).
        self.pending: list[Sampled] = []
        self.told = 0
        self.updates = 0

    # --------------------------------------------------------------- rounds
    def plan_round(self, step: int, total_steps: int, steps_per_epoch: int) -> tuple[int, int]:
        """``(shared-weight steps, controller updates)`` from shared step ``step``: the shared steps
        left in the current round (rounds are ``epochs_per_round`` epochs long, counted from step 0,
        the last one cut at ``total_steps``), then the round's ``controller_steps`` updates."""
        remaining = total_steps - step
        if remaining <= 0:
            return 0, 0
        length = self.config.epochs_per_round * steps_per_epoch
        return min(remaining, length - step % length), self.config.controller_steps

    def train_children(self, n: int) -> list[Candidate]:
        """``n`` children sampled from the controller, one per shared-weight training step."""
        with torch.no_grad():
            indices, _, _ = self.controller.sample(n, self.generator)
        return [self.space.from_indices(row) for row in indices.tolist()]

    # ----------------------------------------------------------------- tell
    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Queue told children; update once ``batch_size`` are queued. A failed child is learned with
        ``fail_reward``, or skipped when that is null (the default).

        Returns the update's diagnostics, or ``{}`` when no update happened.
        """
        batch = self.queue_batch(results)
        return {} if batch is None else self.update(batch)

    def update(self, batch: list[Sampled]) -> dict[str, float]:
        """One controller update (``algo``) on a batch of (indices, reward, sampling log-prob)."""
        cfg = self.config
        indices = torch.tensor([ix for ix, _, _ in batch], dtype=torch.long)
        told = torch.tensor([r for _, r, _ in batch], dtype=torch.float32)
        old_log_prob = sampling_log_probs(self.controller, indices, [lp for _, _, lp in batch])
        with torch.no_grad():
            path_entropy = self.controller.log_prob_and_entropy(indices)[1]
        reward = cfg.reward_scale * told + cfg.entropy_weight * path_entropy
        baseline = self.baseline.value
        if baseline is None:
            baseline = float(reward.mean())
        self.baseline.update(reward.tolist())
        advantage = reward - baseline
        scaled = advantage
        if self.normalize and len(batch) > 1:
            scaled = (advantage - advantage.mean()) / (advantage.std() + 1e-8)

        penalty: ExtraLoss | None = (lambda: self.skip_penalty(indices)) if self.skip_groups else None
        if cfg.algo == "ppo":
            stats = clipped_surrogate_update(self.controller, self.optimizer, indices, scaled, old_log_prob,
                                             epochs=cfg.ppo_epochs, clip=cfg.clip, max_grad_norm=cfg.max_grad_norm,
                                             extra_loss=penalty)
        else:
            stats = self.reinforce_step(indices, scaled, old_log_prob, penalty)
        self.updates += 1
        diagnostics = stats | {
            "baseline": baseline, "reward_mean": told.mean().item(), "shaped_reward_mean": reward.mean().item(),
            "advantage_mean": advantage.mean().item(),
            "advantage_std": advantage.std().item() if len(batch) > 1 else 0.0,
        }
        if self.skip_groups:
            skips = indices[:, [k for group in self.skip_groups for k in group]]
            diagnostics["skip_rate"] = skips.float().mean().item()
        return diagnostics

    def reinforce_step(self, indices: torch.Tensor, advantage: torch.Tensor, old_log_prob: torch.Tensor,
                       penalty: ExtraLoss | None) -> dict[str, float]:
        """ENAS's update: one Adam step on ``−mean(A · log π(a))`` (+ the skip penalty)."""
        log_prob, entropy = self.controller.log_prob_and_entropy(indices)
        policy_loss = -(advantage * log_prob).mean()
        loss, extra = policy_loss, {}
        if penalty is not None:
            term, extra = penalty()
            loss = loss + term
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.controller.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        with torch.no_grad():
            ratio = torch.exp(self.controller.log_prob_and_entropy(indices)[0] - old_log_prob)
        return {"loss": loss.item(), "policy_loss": policy_loss.item(), "entropy": entropy.mean().item(),
                "approx_kl": approx_kl(self.controller, indices, old_log_prob),
                "clip_fraction": ((ratio - 1).abs() > self.config.clip).float().mean().item(), **extra}

    def skip_penalty(self, indices: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``skip_weight`` times the mean over layers (and children) of the summed KL divergences of the
        skip decisions from Bernoulli(skip_target), along the paths ``indices``; and its value."""
        log_probs = self.controller.decision_log_probs(indices)
        per_layer = []
        for group in self.skip_groups:
            kl = sum((lp.exp() * (lp - self.log_skip_target)).sum(1) for lp in (log_probs[k] for k in group))
            per_layer.append(kl)
        penalty = torch.stack(per_layer, dim=1).mean()
        return self.config.skip_weight * penalty, {"skip_penalty": penalty.item()}

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "controller": self.controller.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline.state_dict(),
            "generator": self.generator.get_state(),
            "pending": [[list(ix), r, lp] for ix, r, lp in self.pending],
            "told": self.told,
            "updates": self.updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline.load_state_dict(state["baseline"])
        self.generator.set_state(state["generator"])
        self.pending = [([int(i) for i in ix], float(r), None if lp is None else float(lp))
                        for ix, r, lp in state["pending"]]
        self.told = int(state["told"])
        self.updates = int(state["updates"])
