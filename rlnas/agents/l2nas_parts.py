"""Building blocks of the L²NAS agent: networks with hand-written gradients, Adam, the pinball
loss, schedules, the replay buffer and the reward scale.

The networks are small (a few thousand weights) and every search step runs one or two of
them on a batch of ~32 rows, so they are written in NumPy with explicit backward passes:
a step costs tens of microseconds instead of the ~1.5 ms of PyTorch's per-operation and
autograd overhead. Kept apart from :mod:`rlnas.agents.l2nas` so that the algorithm file reads
top to bottom.
"""
from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

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


DENSE_BLOCK_DIM = 2048
"""Largest encoding whose block sums are one product with :func:`block_matrix` (``dim²`` floats);
larger ones sum block by block (``dim`` operations)."""


class BlockSums:
    """``x ↦ x`` with every entry of the last axis replaced by the sum of its decision block."""

    def __init__(self, sizes: Sequence[int]) -> None:
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self.matrix = block_matrix(sizes).astype(DTYPE) if int(self.sizes.sum()) <= DENSE_BLOCK_DIM else None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.matrix is not None:
            return x @ self.matrix
        return np.repeat(np.add.reduceat(x, self.starts, axis=-1), self.sizes, axis=-1)


def block_softmax(logits: np.ndarray, block_sums: BlockSums) -> np.ndarray:
    """Softmax inside every decision block of the last axis (``block_sums`` of the decisions' sizes).

    The callers bound their logits, so ``exp`` cannot overflow and no block sums to zero.
    """
    e = np.exp(logits)
    return e / block_sums(e)


def one_and_two_edits(sizes: Sequence[int], two: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Every one-edit and (with ``two``; else none) every two-edit change of a cell with decisions
    of ``sizes`` choices.

    One edit: rows ``(decision, shift)``; two edits: rows ``(decision, shift, decision', shift')``
    with ``decision < decision'``; a shift ``1 … k-1`` moves a choice to ``(choice + shift) mod k``.
    Two edits number about ``dim² / 2``: made only for the agents that use them.
    """
    one = np.array([(d, s) for d, k in enumerate(sizes) for s in range(1, k)], dtype=np.int64).reshape(-1, 2)
    pairs = itertools.combinations(one.tolist(), 2) if two else ()
    return one, np.array([(d, s, e, t) for (d, s), (e, t) in pairs if d < e], dtype=np.int64).reshape(-1, 4)


def neighbours_of(rows: np.ndarray, sizes: Sequence[int], edits: np.ndarray) -> np.ndarray:
    """The cells that ``edits`` (from :func:`one_and_two_edits`) make of each row of choice indices."""
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.repeat(np.asarray(rows, dtype=np.int64), len(edits), axis=0)
    edits = np.tile(edits, (len(rows), 1))
    at = np.arange(len(out))
    for c in range(0, edits.shape[1], 2):
        d, shift = edits[:, c], edits[:, c + 1]
        out[at, d] = (out[at, d] + shift) % sizes[d]
    return out


# ---------------------------------------------------------------------- networks
class Dense:
    """ReLU multilayer perceptron whose weights live in one flat vector ``theta``.

    With ``members`` (an ensemble), every weight gets a leading member axis and the members
    run side by side in one batched matrix product: inputs of shape (rows, in) go to every
    member, inputs of shape (members, rows, in) give each member its own rows; outputs are
    (members, rows, out). ``forward`` returns the output and the activations that
    ``backward`` needs; ``backward`` returns the gradient w.r.t. the input and (with
    ``params=True``) writes the weights' gradient into ``grad``, a flat vector laid out like
    ``theta``. Initialisation is PyTorch's default for ``nn.Linear`` (uniform ±1/√fan_in),
    drawn from ``rng``. Computations run in :data:`DTYPE` (inputs are cast).
    """

    def __init__(self, sizes: Sequence[int], rng: np.random.Generator, members: int | None = None):
        lead = () if members is None else (members,)
        shapes = [shape for fan_in, fan_out in itertools.pairwise(sizes)
                  for shape in (lead + (fan_in, fan_out), lead + ((1,) if lead else ()) + (fan_out,))]
        total = sum(math.prod(shape) for shape in shapes)
        self.theta, self.grad = np.zeros(total, dtype=DTYPE), np.zeros(total, dtype=DTYPE)
        self.layers = len(shapes) // 2
        self.members = members
        self.weights, self.grads = [], []
        start = 0
        for shape in shapes:
            stop = start + math.prod(shape)
            self.weights.append(self.theta[start:stop].reshape(shape))
            self.grads.append(self.grad[start:stop].reshape(shape))
            start = stop
        for i in range(0, len(shapes), 2):
            bound = 1.0 / math.sqrt(shapes[i][-2])
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

    def backward(self, inputs: list[np.ndarray], grad_out: np.ndarray, params: bool = True,
                 input_grad: bool = True) -> np.ndarray | None:
        """Backpropagate ``grad_out`` (d loss / d output): write d loss / d weights into ``grad``
        (with ``params``) and return d loss / d input (``None`` without ``input_grad``)."""
        g = grad_out
        keepdims = self.members is not None
        for i in reversed(range(self.layers)):
            if params:
                np.matmul(np.swapaxes(inputs[i], -1, -2), g, out=self.grads[2 * i])
                np.sum(g, axis=-2, keepdims=keepdims, out=self.grads[2 * i + 1])
            if i == 0 and not input_grad:
                return None
            g = g @ np.swapaxes(self.weights[2 * i], -1, -2)
            if i > 0:
                g = g * (inputs[i] > 0.0)  # inputs[i] is the ReLU output of layer i - 1
        return g


class Actor:
    """state → action: ``softmax_block(bound · tanh(mlp(s)) + skip · s)``, one score per choice.

    The MLP's output layer starts at zero, so an untrained actor's action is
    ``softmax_block(skip · s)``: its argmax is the per-decision mode of the top-K architectures
    (the state). Training moves the action away from that mode wherever the critic says so;
    the learned term is bounded by ``bound`` per logit.
    """

    def __init__(self, sizes: Sequence[int], hidden: int, logit_bound: float, state_skip: float,
                 rng: np.random.Generator):
        dim = sum(sizes)
        self.net = Dense([dim, hidden, dim], rng)
        self.net.weights[-2][...] = 0.0
        self.net.weights[-1][...] = 0.0
        self.block_sums = BlockSums(sizes)
        self.logit_bound, self.state_skip = logit_bound, state_skip

    def forward(self, state: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Actions for the rows of ``state`` and what :meth:`backward` needs."""
        state = np.asarray(state, dtype=DTYPE)
        out, inputs = self.net.forward(state)
        squashed = np.tanh(out)
        action = block_softmax(self.logit_bound * squashed + self.state_skip * state, self.block_sums)
        return action, (inputs, squashed, action)

    def backward(self, cache: tuple, grad_action: np.ndarray) -> None:
        """Set ``net.grad`` to the gradient of a loss whose gradient w.r.t. the action is ``grad_action``."""
        inputs, squashed, action = cache
        grad_logits = action * (grad_action - self.block_sums(action * grad_action))
        self.net.backward(inputs, grad_logits * self.logit_bound * (1.0 - squashed * squashed), input_grad=False)


class Critic:
    """(state, action) → predicted quantile of the normalised reward: an ensemble of ``members``
    MLPs on the concatenation, each from its own initialisation (and, in training, its own batches).

    Predictions are (members, rows); the members' spread is the uncertainty the agent's ranking
    can add as optimism.
    """

    def __init__(self, dim: int, hidden: int, rng: np.random.Generator, members: int = 1):
        self.dim, self.members = dim, members
        self.net = Dense([2 * dim, hidden, hidden, 1], rng, members=members)

    def forward(self, state: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Predictions (members × rows) and what :meth:`backward` needs. ``state`` and ``action`` are
        (rows, dim), shared by every member, or (members, rows, dim), one batch per member."""
        if state.shape[:-1] != action.shape[:-1]:
            shape = np.broadcast_shapes(state.shape[:-1], action.shape[:-1])
            state, action = (np.broadcast_to(x, shape + x.shape[-1:]) for x in (state, action))
        out, inputs = self.net.forward(np.concatenate([state, action], axis=-1, dtype=DTYPE))
        return out[..., 0], inputs

    def backward(self, inputs: list[np.ndarray], grad_q: np.ndarray, params: bool = True) -> np.ndarray:
        """Backpropagate d loss / d prediction (members × rows); return d loss / d action (members × rows × dim)."""
        grad_input = self.net.backward(inputs, grad_q[..., None].astype(DTYPE), params=params)
        assert grad_input is not None
        return grad_input[..., self.dim:]

    def learn(self, inputs: list[np.ndarray], grad_q: np.ndarray) -> None:
        """Set ``net.grad`` to the gradient of a loss whose gradient w.r.t. the predictions is ``grad_q``."""
        self.net.backward(inputs, grad_q[..., None].astype(DTYPE), input_grad=False)


class Adam:
    """Adam on one flat parameter vector (the update rule of ``torch.optim.Adam``)."""

    def __init__(self, size: int, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.m, self.v, self.t = np.zeros(size, dtype=DTYPE), np.zeros(size, dtype=DTYPE), 0
        self._scratch, self._denom = np.zeros(size, dtype=DTYPE), np.zeros(size, dtype=DTYPE)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> None:
        """Move ``theta`` (in place) against ``grad``."""
        b1, b2 = self.betas
        self.t += 1
        scratch, denom = self._scratch, self._denom
        self.m *= b1
        self.m += np.multiply(DTYPE(1.0 - b1), grad, out=scratch)
        self.v *= b2
        np.multiply(DTYPE(1.0 - b2), grad, out=scratch)
        self.v += np.multiply(scratch, grad, out=scratch)
        np.sqrt(self.v, out=denom)
        denom *= DTYPE(1.0 / math.sqrt(1.0 - b2 ** self.t))
        denom += DTYPE(self.eps)
        np.multiply(DTYPE(self.lr / (1.0 - b1 ** self.t)), self.m, out=scratch)
        theta -= np.divide(scratch, denom, out=scratch)

    def state_dict(self) -> dict[str, Any]:
        """Moments (tensors) and step count."""
        return {"m": self.m.copy(), "v": self.v.copy(), "t": self.t}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.m[:] = np.asarray(state["m"])
        self.v[:] = np.asarray(state["v"])
        self.t = int(state["t"])


# --------------------------------------------------------------- replay buffer
class ReplayBuffer:
    """(state, architecture, reward) triples in a ring of ``capacity`` plus the ``top_n`` best ever.

    Architectures are stored as choice indices (the critic sees their one-hot encoding). A
    share ``top_share`` of every batch is drawn uniformly from the ``top_n`` best entries told
    so far (the "elite", kept even after the ring forgot them), the rest uniformly from the
    ring. Every operation costs O(batch + top_n), whatever the number of results told.
    """

    def __init__(self, dim: int, decisions: int, capacity: int, top_n: int):
        self.dim, self.decisions, self.capacity, self.top_n = dim, decisions, capacity, top_n
        self.states = np.zeros((capacity, dim), dtype=DTYPE)
        self.archs = np.zeros((capacity, decisions), dtype=np.int32)
        self.rewards = np.zeros(capacity)
        self.size = self.next = 0
        self.elite_states = np.zeros((top_n, dim), dtype=DTYPE)
        self.elite_archs = np.zeros((top_n, decisions), dtype=np.int32)
        self.elite_rewards = np.zeros(top_n)
        self.elite_size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, state: np.ndarray, arch: Sequence[int], reward: float) -> None:
        """Store one triple (overwriting the oldest when the ring is full; the elite keeps the best)."""
        self.states[self.next], self.archs[self.next], self.rewards[self.next] = state, arch, reward
        self.next = (self.next + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)
        if self.elite_size < self.top_n:
            slot = self.elite_size
            self.elite_size += 1
        else:
            slot = int(np.argmin(self.elite_rewards))
            if reward <= self.elite_rewards[slot]:
                return
        self.elite_states[slot], self.elite_archs[slot], self.elite_rewards[slot] = state, arch, reward

    def sample(self, rng: np.random.Generator, batch: int,
               top_share: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch ``(states, archs, rewards)`` drawn with replacement (elite rows first)."""
        n_top = round(batch * top_share) if self.elite_size == self.top_n and self.size > self.top_n else 0
        ring = rng.integers(self.size, size=batch - n_top)
        elite = rng.integers(self.elite_size, size=n_top)
        return (np.concatenate([self.elite_states[elite], self.states[ring]]),
                np.concatenate([self.elite_archs[elite], self.archs[ring]]),
                np.concatenate([self.elite_rewards[elite], self.rewards[ring]]))

    def elite(self) -> np.ndarray:
        """Rewards of the elite (the ``top_n`` best told so far, unordered)."""
        return self.elite_rewards[:self.elite_size]

    def state_dict(self) -> dict[str, Any]:
        """Tensors of the ring as they lie (a batch draws rows by position: a restored ring must hold every
        row where it was) with the position of the next write, and of the elite."""
        return {"states": self.states[:self.size].copy(),
                "archs": self.archs[:self.size].copy(),
                "rewards": self.rewards[:self.size].copy(),
                "next": self.next,
                "elite_states": self.elite_states[:self.elite_size].copy(),
                "elite_archs": self.elite_archs[:self.elite_size].copy(),
                "elite_rewards": self.elite_rewards[:self.elite_size].copy()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        rewards = np.asarray(state["rewards"]).astype(np.float64).reshape(-1)
        if len(rewards) > self.capacity:
            raise ValueError(f"replay buffer state holds {len(rewards)} entries, capacity is {self.capacity}")
        size = len(rewards)
        states = np.asarray(state["states"]).reshape(-1, self.dim)
        archs = np.asarray(state["archs"]).reshape(-1, self.decisions)
        if "next" in state:  # the ring as it lay
            self.next = int(state["next"])
            if not (0 <= self.next < self.capacity and (size == self.capacity or self.next == size)):
                raise ValueError(f"replay buffer state: next write at {self.next} does not fit {size} entries "
                                 f"of capacity {self.capacity}")
        else:  # a checkpoint of rlnas before 2026-12-01: oldest first (a wrapped ring resumed differently)
            self.next = size % self.capacity
        self.size = size
        self.states[:size], self.archs[:size], self.rewards[:size] = states, archs, rewards
        elite = np.asarray(state["elite_rewards"]).astype(np.float64).reshape(-1)
        self.elite_size = len(elite)
        self.elite_states[:self.elite_size] = np.asarray(state["elite_states"]).reshape(-1, self.dim)
        self.elite_archs[:self.elite_size] = np.asarray(state["elite_archs"]).reshape(-1, self.decisions)
        self.elite_rewards[:self.elite_size] = elite


class TopScale:
    """Maps raw rewards to the critic's target scale: ``(r − mean) / std`` of the ``top_n`` best
    rewards, clipped below at ``−clip``. The resolution is where the search is (the few tenths
    of a point between good architectures), not in the tens of points down to broken ones."""

    def __init__(self, clip: float):
        self.clip = clip
        self.mean, self.std = 0.0, 1.0

    def fit(self, best: np.ndarray) -> None:
        """Fit on the best rewards (the replay buffer's elite)."""
        if len(best):
            self.mean, self.std = float(best.mean()), max(float(best.std()), 1e-6)

    def __call__(self, rewards: np.ndarray) -> np.ndarray:
        """Targets of raw ``rewards``."""
        return np.maximum((rewards - self.mean) / self.std, -self.clip)

    def inverse(self, y: float) -> float:
        """Raw reward of target ``y`` (for diagnostics)."""
        return self.mean + self.std * y


# ------------------------------------------------------------------- seen set
class SeenSet:
    """Which architectures (rows of choice indices) were asked, in constant memory.

    Spaces of at most ``2**EXACT_BITS`` architectures get an exact bitmap indexed by the
    mixed-radix code of the indices (NAS-Bench-201: 15,625 bits); with ``canonical`` (a space's
    ``canonical_codes()``) equivalent architectures share the bit of their representative. Larger spaces get a Bloom
    filter of ``2**BLOOM_BITS`` bits and three hashes: a false positive only means that one
    never-asked architecture is treated as asked, which in such a space costs nothing.
    """

    EXACT_BITS = 22
    BLOOM_BITS = 20

    def __init__(self, sizes: Sequence[int], canonical: np.ndarray | None = None):
        self.space_size = math.prod(int(k) for k in sizes)
        self.exact = self.space_size <= 2 ** self.EXACT_BITS
        self.radix = np.cumprod((1,) + tuple(int(k) for k in sizes[:0:-1]))[::-1].astype(np.int64)
        self.bits = np.zeros(self.space_size if self.exact else 2 ** self.BLOOM_BITS, dtype=bool)
        self.count = 0
        # Equivalent architectures share one bit: code -> code of the class representative.
        self.canonical = canonical if self.exact else None
        if self.canonical is not None:
            self.space_size = len(np.unique(self.canonical))

    def slots(self, rows: np.ndarray) -> np.ndarray:
        """(rows, hashes) bit positions of every row (equal rows: the same architecture)."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.int64))
        if self.exact:
            codes = rows @ self.radix
            return (codes if self.canonical is None else self.canonical[codes])[:, None]
        digest = np.array([int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=12).digest(), "little")
                           for r in rows], dtype=object)
        mask = 2 ** self.BLOOM_BITS - 1
        return np.array([[(int(d) >> (32 * j)) & mask for j in range(3)] for d in digest], dtype=np.int64)

    def contains(self, rows: np.ndarray) -> np.ndarray:
        """Boolean per row: asked already (or, for a Bloom filter, a rare false positive)."""
        return self.bits[self.slots(rows)].all(axis=1)

    def add(self, row: Sequence[int]) -> None:
        """Mark one architecture as asked."""
        slots = self.slots(np.asarray(row))[0]
        if not self.bits[slots].all():
            self.count += 1
        self.bits[slots] = True

    def exhausted(self) -> bool:
        """True once every architecture of the space was asked."""
        return self.count >= self.space_size

    def state_dict(self) -> dict[str, Any]:
        """Packed bits (a fixed-size tensor) and the count."""
        return {"bits": np.packbits(self.bits), "count": self.count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        bits = np.unpackbits(np.asarray(state["bits"]))[:len(self.bits)].astype(bool)
        if len(bits) != len(self.bits):
            raise ValueError(f"seen-set state has {len(bits)} bits, this space needs {len(self.bits)}")
        self.bits[:] = bits
        self.count = int(state["count"])
