"""Building blocks of the L²NAS agent: networks with hand-written gradients, Adam, the pinball
loss, schedules, the replay buffer and the reward scale.

The networks are small (a few thousand weights) and every search step runs one or two of
them on a batch of ~32 rows, so they are written in NumPy with explicit backward passes:
a step costs tens of microseconds instead of the ~1.5 ms of PyTorch's per-operation and
autograd overhead. Kept apart from :mod:`rlnas.agents.l2nas` so that the algorithm file reads
top to bottom.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

DTYPE = np.float32
"""Precision of weights, gradients and optimizer moments (as in PyTorch's default)."""


# ------------------------------------------------------------------ closed forms
def pinball_loss(prediction: np.ndarray, target: np.ndarray, quantile: float) -> float:
    """Mean quantile (pinball) loss: with residual ``r = target - prediction``, ``max(τ·r, (τ-1)·r)``.

    Minimising it makes ``prediction`` the ``quantile``-th quantile of ``target``.
    """
    residual = np.asarray(target, dtype=float) - np.asarray(prediction, dtype=float)
    return float(np.maximum(quantile * residual, (quantile - 1.0) * residual).mean())


def pinball_grad(prediction: np.ndarray, target: np.ndarray, quantile: float) -> np.ndarray:
    """Gradient of :func:`pinball_loss` w.r.t. ``prediction``: ``-τ/n`` where the target is above,
    ``(1-τ)/n`` where it is not."""
    above = np.asarray(target) > np.asarray(prediction)
    return np.where(above, -quantile, 1.0 - quantile) / above.size


def decayed(start: float, end: float, halflife: float, step: int) -> float:
    """Exponential schedule ``end + (start - end) · 2^(-step / halflife)`` (``start`` when ``halflife`` is 0)."""
    if halflife <= 0:
        return float(start)
    return float(end + (start - end) * math.pow(2.0, -step / halflife))


def block_matrix(sizes: Sequence[int]) -> np.ndarray:
    """``M[i, j] = 1`` when coordinates ``i`` and ``j`` belong to the same decision block, so that
    ``x @ M`` gives every entry the sum of its own block."""
    block = np.repeat(np.arange(len(sizes)), sizes)
    return (block[:, None] == block[None, :]).astype(float)


def block_softmax(logits: np.ndarray, same_block: np.ndarray) -> np.ndarray:
    """Softmax inside every decision block of the last axis (``same_block`` from :func:`block_matrix`).

    The callers bound their logits, so ``exp`` cannot overflow and no block sums to zero.
    """
    e = np.exp(logits)
    return e / (e @ same_block)


# ---------------------------------------------------------------------- networks
class Dense:
    """ReLU multilayer perceptron whose weights live in one flat vector ``theta``.

    ``forward`` returns the output and the activations that ``backward`` needs; ``backward``
    returns the gradient w.r.t. the input and (with ``params=True``) adds the weights'
    gradient to ``grad``, a flat vector laid out like ``theta``. Initialisation is PyTorch's
    default for ``nn.Linear`` (uniform ±1/√fan_in), drawn from ``rng``. Computations run in
    :data:`DTYPE` (inputs are cast).
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator):
        shapes = [shape for fan_in, fan_out in zip(sizes[:-1], sizes[1:]) for shape in ((fan_in, fan_out), (fan_out,))]
        total = sum(math.prod(shape) for shape in shapes)
        self.theta, self.grad = np.zeros(total, dtype=DTYPE), np.zeros(total, dtype=DTYPE)
        self.layers = len(shapes) // 2
        self.weights, self.grads = [], []
        start = 0
        for shape in shapes:
            stop = start + math.prod(shape)
            self.weights.append(self.theta[start:stop].reshape(shape))
            self.grads.append(self.grad[start:stop].reshape(shape))
            start = stop
        for i in range(0, len(shapes), 2):
            bound = 1.0 / math.sqrt(shapes[i][0])
            for w in self.weights[i:i + 2]:
                w[...] = rng.uniform(-bound, bound, w.shape)

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output for the rows of ``x`` and the list of layer inputs (for ``backward``)."""
        inputs = []
        x = np.asarray(x, dtype=DTYPE)
        for i in range(self.layers):
            inputs.append(x)
            x = x @ self.weights[2 * i] + self.weights[2 * i + 1]
            if i < self.layers - 1:
                x = np.maximum(x, 0.0)
        return x, inputs

    def backward(self, inputs: list[np.ndarray], grad_out: np.ndarray, params: bool = True) -> np.ndarray:
        """Backpropagate ``grad_out`` (d loss / d output); return d loss / d input."""
        g = grad_out
        for i in reversed(range(self.layers)):
            if params:
                self.grads[2 * i] += inputs[i].T @ g
                self.grads[2 * i + 1] += g.sum(axis=0)
            g = g @ self.weights[2 * i].T
            if i > 0:
                g = g * (inputs[i] > 0.0)  # inputs[i] is the ReLU output of layer i - 1
        return g


class Actor:
    """state → action: ``softmax_block(bound · tanh(mlp(s)) + skip · s)``, one score per choice.

    The skip term biases the action toward the state (the top-K mean), so the argmax of an
    untrained actor is the per-decision mode of the best architectures found so far.
    """

    def __init__(self, sizes: Sequence[int], hidden: int, logit_bound: float, state_skip: float,
                 rng: np.random.Generator):
        dim = sum(sizes)
        self.net = Dense([dim, hidden, dim], rng)
        self.same_block = block_matrix(sizes).astype(DTYPE)
        self.logit_bound, self.state_skip = logit_bound, state_skip

    def forward(self, state: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Actions for the rows of ``state`` and what :meth:`backward` needs."""
        state = np.asarray(state, dtype=DTYPE)
        out, inputs = self.net.forward(state)
        squashed = np.tanh(out)
        action = block_softmax(self.logit_bound * squashed + self.state_skip * state, self.same_block)
        return action, (inputs, squashed, action)

    def backward(self, cache: tuple, grad_action: np.ndarray) -> None:
        """Add to ``net.grad`` the gradient of a loss whose gradient w.r.t. the action is ``grad_action``."""
        inputs, squashed, action = cache
        grad_logits = action * (grad_action - (action * grad_action) @ self.same_block)
        self.net.backward(inputs, grad_logits * self.logit_bound * (1.0 - squashed * squashed), params=True)


class Critic:
    """(state, action) → predicted quantile of the normalised reward (MLP on the concatenation)."""

    def __init__(self, dim: int, hidden: int, rng: np.random.Generator):
        self.dim = dim
        self.net = Dense([2 * dim, hidden, hidden, 1], rng)

    def forward(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Predictions (one per row) and what :meth:`backward` needs."""
        out, inputs = self.net.forward(np.concatenate([state, action], axis=-1, dtype=DTYPE))
        return out[..., 0], inputs

    def backward(self, inputs: list[np.ndarray], grad_q: np.ndarray, params: bool = True) -> np.ndarray:
        """Backpropagate d loss / d prediction; return d loss / d action."""
        return self.net.backward(inputs, grad_q[:, None].astype(DTYPE), params=params)[:, self.dim:]


class Adam:
    """Adam on one flat parameter vector (the update rule of ``torch.optim.Adam``)."""

    def __init__(self, size: int, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m, self.v, self.t = np.zeros(size, dtype=DTYPE), np.zeros(size, dtype=DTYPE), 0

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Move ``theta`` (in place) against ``grad``."""
        b1, b2 = self.betas
        self.t += 1
        self.m *= b1
        self.m += DTYPE(1.0 - b1) * grad
        self.v *= b2
        self.v += DTYPE(1.0 - b2) * grad * grad
        denom = np.sqrt(self.v)
        denom *= DTYPE(1.0 / math.sqrt(1.0 - b2 ** self.t))
        denom += DTYPE(self.eps)
        theta -= DTYPE(self.lr / (1.0 - b1 ** self.t)) * self.m / denom

    def state_dict(self) -> dict[str, Any]:
        """Moments (tensors) and step count."""
        return {"m": torch.from_numpy(self.m.copy()), "v": torch.from_numpy(self.v.copy()), "t": self.t}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.m[:] = state["m"].numpy()
        self.v[:] = state["v"].numpy()
        self.t = int(state["t"])


# --------------------------------------------------------------- replay buffer
class ReplayBuffer:
    """(state, action, reward) triples; samples favour the top-rewarded entries.

    A share ``top_share`` of every batch is drawn uniformly from the ``top_n`` best entries
    (by raw reward), the rest uniformly from the whole buffer. Beyond ``capacity`` the oldest
    entries are dropped. Storage grows by doubling, so ``add`` is amortised O(1).
    """

    def __init__(self, dim: int, capacity: int):
        self.dim, self.capacity, self.size = dim, capacity, 0
        self.states = np.zeros((16, dim), dtype=DTYPE)
        self.actions = np.zeros((16, dim), dtype=DTYPE)
        self.rewards = np.zeros(16)

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
        self.states = np.zeros((room, self.dim), dtype=DTYPE)
        self.actions = np.zeros((room, self.dim), dtype=DTYPE)
        self.rewards = np.zeros(room)
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
