"""L²NAS: continuous-action actor-critic architecture search (Mills et al., 2021; WO2022068934).

One search step, as in the method:

1. state ``s`` = mean one-hot encoding of the ``top_k`` best architectures evaluated so far
   (before any result: the uniform vector, ``1/kᵢ`` in every block of ``kᵢ`` choices);
2. the actor maps ``s`` to a continuous action ``a`` (one score per choice of every decision);
   exploration adds Gaussian noise to ``a`` or, with probability ε, replaces it by the one-hot
   vector of a uniformly random architecture; both noise and ε decay on a schedule;
3. the architecture is the argmax of ``a`` in every decision block (``space.decode(a)``);
4. its reward is told back with the raw action, and the (s, a, reward) triple enters a replay
   buffer;
5. the critic learns (s, a) → a high quantile of the (normalised) reward with the pinball
   loss, on batches that favour the top-rewarded entries; the actor is then moved along the
   critic's gradient to maximise ``critic(s, actor(s))`` (DDPG with a one-step return).

Engineering beyond the papers (each one a config knob, see docs/agents/l2nas.md): reward
normalisation on the scale of the best rewards, an actor skip term toward the state, never re-proposing
an architecture already asked (noise grows until the argmax is new), and scoring
several noisy actions with the critic and keeping the best.

The networks are NumPy with hand-written gradients (``l2nas_parts``): at this size PyTorch's
per-operation overhead cost ~2 ms per trial, the NumPy version a few tenths of that.
Policy transfer (:meth:`L2NASAgent.load_policy`) takes actor, critic and the source's
top-K architectures (not their rewards).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlnas.agents.base import Agent, AgentConfig, Proposal, Result, rng_state, set_rng_state
from rlnas.agents.l2nas_parts import Actor, Adam, Critic, ReplayBuffer, RewardScale, decayed, pinball_grad, pinball_loss
from rlnas.errors import ConfigError


@dataclass
class L2NASConfig(AgentConfig):
    """Options of the L²NAS agent (defaults tuned on NAS-Bench-201, see docs/agents/l2nas.md)."""

    top_k: int = 5
    """Number of best architectures whose mean encoding is the state."""
    hidden: int = 64
    """Width of the hidden layers of the actor (one layer) and the critic (two layers)."""
    actor_lr: float = 1e-3
    """Adam learning rate of the actor."""
    critic_lr: float = 3e-3
    """Adam learning rate of the critic."""
    quantile: float = 0.75
    """Quantile τ of the normalised reward that the critic predicts (pinball loss), in (0, 1)."""
    reward_norm: str = "top"
    """Critic target scale: ``zscore`` (all rewards), ``top`` (z-score of the ``top_n`` best, clipped) or ``rank``."""
    reward_clip: float = 3.0
    """With ``reward_norm='top'``: targets below ``-reward_clip`` are clipped to it."""
    batch: int = 32
    """Replay samples per gradient step."""
    updates_per_result: int = 2
    """Critic + actor gradient steps per successful result told."""
    warmup: int = 8
    """Successful results needed before the first gradient step."""
    buffer_capacity: int = 10_000
    """Most (state, action, reward) triples kept; the oldest go first."""
    top_n: int = 32
    """Size of the list of top-rewarded buffer entries that batches favour."""
    top_share: float = 0.5
    """Share of every batch drawn from the ``top_n`` best entries (the rest: uniform)."""
    initial_random: int = 10
    """First proposals that are uniformly random architectures (one-hot actions)."""
    epsilon_start: float = 0.4
    """Probability of a random architecture right after ``initial_random``."""
    epsilon_end: float = 0.02
    """Floor of the random-architecture probability."""
    epsilon_halflife: float = 50.0
    """Proposals over which ``epsilon - epsilon_end`` halves (0: constant ``epsilon_start``)."""
    noise_start: float = 0.3
    """Standard deviation of the Gaussian action noise at the start."""
    noise_end: float = 0.1
    """Floor of the action-noise standard deviation."""
    noise_halflife: float = 100.0
    """Proposals over which ``noise_std - noise_end`` halves (0: constant ``noise_start``)."""
    logit_bound: float = 4.0
    """Bound of the actor's learned logits (``bound · tanh``) before the per-block softmax."""
    state_skip: float = 8.0
    """Weight of the state added to the actor's logits (pull toward the top-K mode)."""
    screen: int = 32
    """Noisy actions drawn per proposal and scored by the critic; the best new one is kept (1: no screening)."""
    avoid_repeats: bool = True
    """Never re-propose an architecture already asked (while unseen ones remain)."""
    max_retries: int = 60
    """Noise redraws (each ``retry_growth`` times wider) before falling back to a random new architecture."""
    retry_growth: float = 1.1
    """Factor by which the noise std grows at every redraw that gave an already-seen architecture."""

    def __post_init__(self) -> None:
        positive = ("top_k", "hidden", "batch", "buffer_capacity", "top_n", "screen", "max_retries")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"l2nas option {name} must be an integer >= 1, got {value!r}")
        for name in ("updates_per_result", "warmup", "initial_random"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"l2nas option {name} must be an integer >= 0, got {value!r}")
        if not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"l2nas option quantile must lie strictly between 0 and 1, got {self.quantile!r}")
        for name in ("top_share", "epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"l2nas option {name} must lie in [0, 1], got {getattr(self, name)!r}")
        for name in ("actor_lr", "critic_lr", "logit_bound"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"l2nas option {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("noise_start", "noise_end", "noise_halflife", "epsilon_halflife", "state_skip"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"l2nas option {name} must be >= 0, got {getattr(self, name)!r}")
        if self.reward_norm not in RewardScale.MODES:
            raise ConfigError(f"l2nas option reward_norm must be one of {list(RewardScale.MODES)}, got {self.reward_norm!r}")
        if not self.reward_clip > 0:
            raise ConfigError(f"l2nas option reward_clip must be > 0, got {self.reward_clip!r}")
        if not self.retry_growth >= 1.0:
            raise ConfigError(f"l2nas option retry_growth must be >= 1, got {self.retry_growth!r}")


class L2NASAgent(Agent):
    """Continuous-action actor-critic NAS on any categorical space (asynchronous: ``batch_size`` 1)."""

    name = "l2nas"
    Config = L2NASConfig

    def __init__(self, space, config=None, *, seed=None, device="cpu"):
        super().__init__(space, config, seed=seed, device=device)
        cfg: L2NASConfig = self.config
        self.rng = np.random.default_rng(seed)
        init_rng = np.random.default_rng(int(self.rng.integers(2**62)))
        self.sizes = np.array(space.sizes)
        self.offsets = np.array(space.offsets)
        self._space_size = space.size
        # Equal block sizes (NB201: 6 x 5) let the per-block argmax run as one reshape.
        self._uniform_k = int(self.sizes[0]) if len(set(space.sizes)) == 1 else None
        self.actor = Actor(space.sizes, cfg.hidden, cfg.logit_bound, cfg.state_skip, init_rng)
        self.critic = Critic(space.dim, cfg.hidden, init_rng)
        self.actor_opt = Adam(len(self.actor.net.theta), cfg.actor_lr)
        self.critic_opt = Adam(len(self.critic.net.theta), cfg.critic_lr)
        self.buffer = ReplayBuffer(space.dim, cfg.buffer_capacity)
        self.scale = RewardScale(cfg.reward_norm, cfg.top_n, cfg.reward_clip)
        self.history: list[tuple[tuple[int, ...], float]] = []   # successful (indices, reward), in order
        self.top: list[int] = []                                   # positions in history of the top-K
        self.seen: dict[tuple[int, ...], None] = {}                # every architecture asked (ordered set)
        # Transferred architectures (load_policy) still to propose, and the prior state they
        # define until this search has results of its own.
        self.transferred: list[tuple[int, ...]] = []
        self.prior: list[tuple[int, ...]] = []
        # Mixed-radix integer codes of the seen architectures, for vectorised look-ups
        # (only when every code fits in an int64).
        self._radix = (np.cumprod((1,) + space.sizes[:0:-1])[::-1].astype(np.int64)
                       if self._space_size < 2**62 else None)
        self._seen_codes: set[int] = set()
        self.asked = self.told = self.failed = self.updates = 0
        self.retry_level = 0                                       # noise level of the last actor proposal
        self._state_cache: np.ndarray | None = None
        self._mean_cache: np.ndarray | None = None                # actor(state) until state or actor change

    # ----------------------------------------------------------------- state
    def encode_indices(self, indices: Sequence[int]) -> np.ndarray:
        """Concatenated one-hot vector of choice ``indices`` (same as ``space.encode``)."""
        x = np.zeros(self.space.dim)
        x[self.offsets + np.asarray(indices)] = 1.0
        return x

    def current_state(self) -> np.ndarray:
        """Mean encoding of the top-K architectures so far; before any result, the uniform vector
        (or, after :meth:`load_policy`, the mean encoding of the transferred top-K)."""
        if self._state_cache is None:
            members = [self.history[i][0] for i in self.top] or self.prior
            if not members:
                self._state_cache = np.concatenate([np.full(k, 1.0 / k) for k in self.sizes])
            else:
                onehot = np.zeros((len(members), self.space.dim))
                onehot[np.arange(len(members))[:, None], self.offsets + np.array(members)] = 1.0
                self._state_cache = onehot.mean(axis=0)
        return self._state_cache

    def epsilon(self, step: int) -> float:
        """Random-architecture probability at proposal ``step`` (1 during ``initial_random``)."""
        cfg = self.config
        if step < cfg.initial_random:
            return 1.0
        return decayed(cfg.epsilon_start, cfg.epsilon_end, cfg.epsilon_halflife, step - cfg.initial_random)

    def noise_std(self, step: int) -> float:
        """Standard deviation of the action noise at proposal ``step``."""
        cfg = self.config
        return decayed(cfg.noise_start, cfg.noise_end, cfg.noise_halflife, max(step - cfg.initial_random, 0))

    # ------------------------------------------------------------------- ask
    def _argmax(self, actions: np.ndarray) -> np.ndarray:
        """Choice indices (rows × decisions) of the per-block argmax of ``actions``."""
        if self._uniform_k is not None:
            return actions.reshape(len(actions), -1, self._uniform_k).argmax(axis=2)
        return np.stack([actions[:, o:o + k].argmax(axis=1) for o, k in zip(self.offsets, self.sizes)], axis=1)

    def _exhausted(self) -> bool:
        return len(self.seen) >= self._space_size

    def _mark_seen(self, indices: tuple[int, ...]) -> None:
        if indices in self.seen:
            return
        self.seen[indices] = None
        if self._radix is not None:
            self._seen_codes.add(int(np.dot(indices, self._radix)))

    def _new_mask(self, rows: np.ndarray) -> np.ndarray:
        """Which rows of choice indices are architectures not asked yet (all, when repeats are allowed)."""
        if not self.config.avoid_repeats or self._exhausted():
            return np.ones(len(rows), dtype=bool)
        if self._radix is not None:
            return np.array([code not in self._seen_codes for code in (rows @ self._radix).tolist()])
        return np.array([tuple(row.tolist()) not in self.seen for row in rows])

    def _random_action(self) -> np.ndarray:
        """One-hot action of a uniformly random architecture (a new one while any is left)."""
        for _ in range(1000):
            indices = self.rng.integers(self.sizes)
            if self._new_mask(indices[None])[0]:
                break
        return self.encode_indices(indices)

    def _actor_action(self, state: np.ndarray, std: float) -> tuple[np.ndarray, str]:
        """Noisy actor action whose argmax is new; screened by the critic when ``screen > 1``.

        Draw ``screen`` noisy actions with std ``std · retry_growth^level``; while none of them
        decodes to a new architecture, draw again one level up. Among the new ones of the
        first successful draw, keep the one the critic rates highest. The next proposal
        starts two levels below the level that succeeded (so the widening is not redone
        from scratch every time, and the noise comes back down when it can).
        """
        cfg = self.config
        if self._mean_cache is None:
            self._mean_cache = self.actor.forward(state[None])[0][0]
        mean = self._mean_cache
        start = max(self.retry_level - 2, 0)
        for level in range(start, start + cfg.max_retries):
            scale = std * cfg.retry_growth ** level
            actions = mean + scale * self.rng.standard_normal((cfg.screen, len(mean)))
            new = np.flatnonzero(self._new_mask(self._argmax(actions)))
            if len(new) == 0:
                continue
            self.retry_level = level
            if len(new) == 1 or not self.updates:
                return actions[new[0]], "actor"
            q = self.critic.forward(np.broadcast_to(state, (len(new), len(state))), actions[new])[0]
            return actions[new[int(np.argmax(q))]], "actor"
        return self._random_action(), "fallback"

    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose ``n`` architectures; ``info`` holds the raw action, the state and the exploration."""
        proposals = []
        for _ in range(n):
            step, state = self.asked, self.current_state()
            eps, std = self.epsilon(step), self.noise_std(step)
            while self.transferred and not self._new_mask(np.array([self.transferred[0]]))[0]:
                self.transferred.pop(0)
            if self.transferred:
                action, source = self.encode_indices(self.transferred.pop(0)), "transfer"
            elif self.rng.random() < eps:
                action, source = self._random_action(), "random"
            else:
                action, source = self._actor_action(state, std)
            indices = tuple(int(v) for v in self._argmax(action[None])[0])
            self._mark_seen(indices)
            self.asked += 1
            info = {"action": [float(v) for v in action], "state": [float(v) for v in state],
                    "source": source, "epsilon": eps, "noise_std": std, "q_pred": self._q_pred(state, action)}
            proposals.append(Proposal(self.space.from_indices(indices), info))
        return proposals

    def _q_pred(self, state: np.ndarray, action: np.ndarray) -> float:
        """Critic's prediction for (state, action) on the reward scale (NaN before any update)."""
        if not self.updates:
            return math.nan
        return self.scale.inverse(float(self.critic.forward(state[None], action[None])[0][0]))

    # ------------------------------------------------------------------ tell
    def _record(self, indices: tuple[int, ...], reward: float) -> None:
        """Add a successful result to the history and keep the top-K list (ties: earliest first)."""
        self.history.append((indices, reward))
        self.top.append(len(self.history) - 1)
        self.top.sort(key=lambda i: (-self.history[i][1], i))
        del self.top[self.config.top_k:]
        self._state_cache = self._mean_cache = None

    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Store results (failed ones are only counted) and train critic and actor."""
        cfg = self.config
        successes = 0
        last_q = math.nan
        for proposal, reward in results:
            self.told += 1
            indices = self.space.indices(proposal.candidate)
            self._mark_seen(tuple(indices))
            if reward is None or not math.isfinite(float(reward)):
                self.failed += 1
                continue
            reward = float(reward)
            state = proposal.info.get("state")
            action = proposal.info.get("action")
            if state is None or action is None:  # told a proposal that this agent did not make
                state, action = self.current_state(), self.encode_indices(indices)
            self._record(tuple(indices), reward)
            self.buffer.add(state, action, reward)
            last_q = float(proposal.info.get("q_pred", math.nan))
            successes += 1
        if successes:
            self.scale.fit(self.buffer.rewards[:len(self.buffer)])
        losses = [self._update() for _ in range(cfg.updates_per_result * successes)
                  if len(self.buffer) >= max(cfg.warmup, 1)]
        critic_loss = float(np.mean([c for c, _ in losses])) if losses else math.nan
        actor_q = float(np.mean([a for _, a in losses])) if losses else math.nan
        return {
            "critic_loss": critic_loss,
            "actor_q": actor_q,
            "epsilon": self.epsilon(self.asked),
            "noise_std": self.noise_std(self.asked),
            "topk_mean_reward": float(np.mean([self.history[i][1] for i in self.top])) if self.top else math.nan,
            "best_reward": self.history[self.top[0]][1] if self.top else math.nan,
            "buffer_size": float(len(self.buffer)),
            "q_pred": last_q,
            "updates": float(self.updates),
            "failed": float(self.failed),
            "retry_level": float(self.retry_level),
        }

    def _update(self) -> tuple[float, float]:
        """One critic step (pinball loss) and one actor step (maximise the critic); returns both."""
        cfg = self.config
        states, actions, rewards = self.buffer.sample(self.rng, cfg.batch, cfg.top_n, cfg.top_share)
        targets = self.scale(rewards)

        q, inputs = self.critic.forward(states, actions)
        critic_loss = pinball_loss(q, targets, cfg.quantile)
        self.critic.net.grad[:] = 0.0
        self.critic.backward(inputs, pinball_grad(q, targets, cfg.quantile))
        self.critic_opt.step(self.critic.net.theta, self.critic.net.grad)

        # The actor ascends Q(s, actor(s)) on the batch's states plus the current one; the
        # critic only passes the gradient through to the action (its weights stay put).
        actor_states = np.vstack([states, self.current_state()[None]])
        action, actor_cache = self.actor.forward(actor_states)
        actor_q, critic_inputs = self.critic.forward(actor_states, action)
        grad_action = self.critic.backward(critic_inputs, np.full(len(actor_q), -1.0 / len(actor_q)), params=False)
        self.actor.net.grad[:] = 0.0
        self.actor.backward(actor_cache, grad_action)
        self.actor_opt.step(self.actor.net.theta, self.actor.net.grad)
        self.updates += 1
        self._mean_cache = None
        return critic_loss, float(actor_q.mean())

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers, replay buffer, history, transfer prior, RNG state and counters."""
        return {
            "actor": torch.from_numpy(self.actor.net.theta.copy()),
            "critic": torch.from_numpy(self.critic.net.theta.copy()),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "buffer": self.buffer.state_dict(),
            "history": [[list(indices), reward] for indices, reward in self.history],
            "top": list(self.top),
            "seen": [list(indices) for indices in self.seen],
            "transferred": [list(indices) for indices in self.transferred],
            "prior": [list(indices) for indices in self.prior],
            "rng": rng_state(self.rng),
            "counters": {"asked": self.asked, "told": self.told, "failed": self.failed, "updates": self.updates,
                         "retry_level": self.retry_level},
        }

    def _load_weights(self, state: Mapping[str, Any]) -> None:
        for net, key in ((self.actor.net, "actor"), (self.critic.net, "critic")):
            weights = state[key].numpy().reshape(-1)
            if weights.shape != net.theta.shape:
                raise ConfigError(f"l2nas state: {key} has {weights.size} weights, this agent's has {net.theta.size} "
                                  "(different space or hidden width)")
            net.theta[:] = weights
        self._mean_cache = None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._load_weights(state)
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.buffer.load_state_dict(state["buffer"])
        self.scale.fit(self.buffer.rewards[:len(self.buffer)])
        self.history = [(tuple(int(i) for i in indices), float(reward)) for indices, reward in state["history"]]
        self.top = [int(i) for i in state["top"]]
        self.seen, self._seen_codes = {}, set()
        for indices in state["seen"]:
            self._mark_seen(tuple(int(i) for i in indices))
        self.transferred = [tuple(int(i) for i in ix) for ix in state.get("transferred", [])]
        self.prior = [tuple(int(i) for i in ix) for ix in state.get("prior", [])]
        self._state_cache = None
        set_rng_state(self.rng, state["rng"])
        counters = state["counters"]
        self.asked, self.told = int(counters["asked"]), int(counters["told"])
        self.failed, self.updates = int(counters["failed"]), int(counters["updates"])
        self.retry_level = int(counters["retry_level"])

    def load_policy(self, state: Mapping[str, Any]) -> None:
        """Policy transfer from a search of the same space on another task.

        Taken: the actor's and the critic's weights (the critic predicts a *normalised*
        reward, so its scale carries over), and the source's top-K architectures without
        their rewards. Those architectures are proposed first (instead of the first random
        ones) and, until this search has results of its own, their mean encoding is the
        state. Not taken: rewards, replay buffer and history (another task, another reward
        scale), the optimizers' moments, the counters and the RNG: this agent keeps its own
        seed, and its exploration schedules start from the beginning.
        """
        self._load_weights(state)
        history = state["history"]
        top = [tuple(int(i) for i in history[int(pos)][0]) for pos in state["top"]]
        self.prior = [tuple(self.space.indices(self.space.from_indices(ix))) for ix in top[:self.config.top_k]]
        self.transferred = list(self.prior)
        self._state_cache = None
