"""Building blocks of the L²NAS agent: networks, the pinball loss, schedules, the replay buffer.

Kept apart from :mod:`rlnas.agents.l2nas` so that the algorithm file reads top to bottom.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn


# ------------------------------------------------------------------ closed forms
def pinball_loss(prediction: torch.Tensor, target: torch.Tensor, quantile: float) -> torch.Tensor:
    """Mean quantile (pinball) loss: with residual ``r = target - prediction``, ``max(τ·r, (τ-1)·r)``.

    Minimising it makes ``prediction`` the ``quantile``-th quantile of ``target``.
    """
    residual = target - prediction
    return torch.maximum(quantile * residual, (quantile - 1.0) * residual).mean()


def decayed(start: float, end: float, halflife: float, step: int) -> float:
    """Exponential schedule ``end + (start - end) · 2^(-step / halflife)`` (``start`` when ``halflife`` is 0)."""
    if halflife <= 0:
        return float(start)
    return float(end + (start - end) * math.pow(2.0, -step / halflife))


# ---------------------------------------------------------------------- networks
def _init_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    """PyTorch's default ``nn.Linear`` init (uniform ±1/√fan_in), drawn from ``generator``."""
    bound = 1.0 / math.sqrt(layer.in_features)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=generator)
        layer.bias.uniform_(-bound, bound, generator=generator)


def mlp(sizes: Sequence[int], generator: torch.Generator) -> nn.Sequential:
    """Linear layers of ``sizes`` with ReLU between them, initialised from ``generator``."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = nn.Linear(fan_in, fan_out)
        _init_linear(linear, generator)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BlockSoftmax(nn.Module):
    """Softmax inside every decision block of a concatenated vector (blocks of any sizes)."""

    def __init__(self, sizes: Sequence[int]):
        super().__init__()
        block = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(list(sizes)))
        # same_block[i, j] = 1 when choices i and j belong to the same decision: e @ same_block
        # gives every entry the sum of its own block.
        self.register_buffer("same_block", (block[:, None] == block[None, :]).float(), persistent=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        # The actor bounds its logits, so exp cannot overflow and no block sums to zero.
        e = torch.exp(logits)
        return e / (e @ self.same_block)


class Actor(nn.Module):
    """state → action: ``softmax_block(bound · tanh(mlp(s)) + skip · s)``, one score per choice.

    The skip term biases the action toward the state (the top-K mean), so the argmax of an
    untrained actor is the per-decision mode of the best architectures found so far.
    """

    def __init__(self, sizes: Sequence[int], hidden: int, logit_bound: float, state_skip: float,
                 generator: torch.Generator):
        super().__init__()
        dim = sum(sizes)
        self.body = mlp([dim, hidden, dim], generator)
        self.softmax = BlockSoftmax(sizes)
        self.logit_bound = logit_bound
        self.state_skip = state_skip

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        logits = self.logit_bound * torch.tanh(self.body(state)) + self.state_skip * state
        return self.softmax(logits)


class Critic(nn.Module):
    """(state, action) → predicted quantile of the normalised reward."""

    def __init__(self, dim: int, hidden: int, generator: torch.Generator):
        super().__init__()
        self.body = mlp([2 * dim, hidden, hidden, 1], generator)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([state, action], dim=-1)).squeeze(-1)


# --------------------------------------------------------------- replay buffer
class ReplayBuffer:
    """(state, action, reward) triples; samples favour the top-rewarded entries.

    A share ``top_share`` of every batch is drawn uniformly from the ``top_n`` best entries
    (by raw reward), the rest uniformly from the whole buffer. Beyond ``capacity`` the oldest
    entries are dropped. Storage grows by doubling, so ``add`` is amortised O(1).
    """

    def __init__(self, dim: int, capacity: int):
        self.dim, self.capacity, self.size = dim, capacity, 0
        self.states = np.zeros((16, dim), dtype=np.float32)
        self.actions = np.zeros((16, dim), dtype=np.float32)
        self.rewards = np.zeros(16, dtype=np.float64)

    def __len__(self) -> int:
        return self.size

    def add(self, state: Sequence[float], action: Sequence[float], reward: float) -> None:
        """Append one triple (dropping the oldest when full)."""
        if self.size == self.capacity:
            keep = self.capacity - 1
            self.states[:keep], self.actions[:keep] = self.states[1:self.size], self.actions[1:self.size]
            self.rewards[:keep] = self.rewards[1:self.size]
            self.size = keep
        if self.size == len(self.rewards):
            grow = min(2 * self.size, self.capacity)
            self.states = np.resize(self.states, (grow, self.dim))
            self.actions = np.resize(self.actions, (grow, self.dim))
            self.rewards = np.resize(self.rewards, grow)
        self.states[self.size], self.actions[self.size], self.rewards[self.size] = state, action, reward
        self.size += 1

    def sample(self, rng: np.random.Generator, batch: int, top_n: int,
               top_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch ``(states, actions, rewards)`` of ``batch`` entries drawn with replacement."""
        n_top = int(round(batch * top_share)) if self.size > top_n else 0
        idx = rng.integers(self.size, size=batch)
        if n_top:
            best = np.argpartition(-self.rewards[:self.size], top_n - 1)[:top_n]
            idx[:n_top] = best[rng.integers(top_n, size=n_top)]
        return self.states[idx], self.actions[idx], self.rewards[idx]

    def state_dict(self) -> dict[str, Any]:
        """Tensors of the stored triples, oldest first."""
        return {"states": torch.from_numpy(self.states[:self.size].copy()),
                "actions": torch.from_numpy(self.actions[:self.size].copy()),
                "rewards": torch.from_numpy(self.rewards[:self.size].copy())}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        rewards = state["rewards"].numpy().astype(np.float64).reshape(-1)
        self.size = len(rewards)
        room = max(16, self.size)
        self.states = np.zeros((room, self.dim), dtype=np.float32)
        self.actions = np.zeros((room, self.dim), dtype=np.float32)
        self.rewards = np.zeros(room, dtype=np.float64)
        self.states[:self.size] = state["states"].numpy().reshape(-1, self.dim)
        self.actions[:self.size] = state["actions"].numpy().reshape(-1, self.dim)
        self.rewards[:self.size] = rewards


class RewardScale:
    """Maps raw rewards to the critic's target scale, fitted on the rewards in the buffer.

    ``zscore``: ``(r - mean) / std`` over all rewards. ``top``: ``(r - mean) / std`` over the
    ``top_n`` best rewards, clipped below at ``-clip`` (resolution where the search is: the
    few tenths of a point between good architectures, not the tens of points to bad ones).
    ``rank``: the mid-rank of ``r`` among all rewards, in [0, 1].
    """

    MODES = ("zscore", "top", "rank")

    def __init__(self, mode: str, top_n: int, clip: float):
        self.mode, self.top_n, self.clip = mode, top_n, clip
        self.mean, self.std = 0.0, 1.0
        self.sorted = np.zeros(0)

    def fit(self, rewards: np.ndarray) -> None:
        """Fit on ``rewards`` (the buffer's raw rewards)."""
        self.sorted = np.sort(rewards)
        ref = self.sorted[-self.top_n:] if self.mode == "top" else self.sorted
        if len(ref):
            self.mean, self.std = float(ref.mean()), max(float(ref.std()), 1e-6)

    def __call__(self, rewards: np.ndarray) -> np.ndarray:
        """Targets of raw ``rewards``."""
        if self.mode == "rank":
            n = max(len(self.sorted), 1)
            left = np.searchsorted(self.sorted, rewards, "left")
            right = np.searchsorted(self.sorted, rewards, "right")
            return (left + right) / (2.0 * n)
        y = (rewards - self.mean) / self.std
        return np.maximum(y, -self.clip) if self.mode == "top" else y

    def inverse(self, y: float) -> float:
        """Raw reward of target ``y`` (for diagnostics)."""
        if self.mode == "rank":
            return float(np.quantile(self.sorted, min(max(y, 0.0), 1.0))) if len(self.sorted) else math.nan
        return self.mean + self.std * y
