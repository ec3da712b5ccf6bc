"""L²NAS: continuous-action actor-critic architecture search (Mills et al., 2021; WO2022068934).

One search step, as in the method:

1. state ``s`` = mean one-hot encoding of the ``top_k`` best architectures evaluated so far
   (before any result: the uniform vector, ``1/kᵢ`` in every block of ``kᵢ`` choices);
2. the actor maps ``s`` to a continuous action ``a`` (one score per choice of every decision);
   exploration adds Gaussian noise to ``a`` or, with probability ε, replaces it by the one-hot
   vector of a uniformly random architecture; both noise and ε decay on a schedule;
3. the architecture is the argmax of ``a`` in every decision block (``space.decode(a)``);
4. its reward is told back, and (s, architecture, reward) enters a replay buffer;
5. the critic learns (s, one-hot architecture) → a high quantile of the (normalised) reward
   with the pinball loss, on batches that favour the top-rewarded entries; the actor is then
   moved along the critic's gradient to maximise ``critic(s, actor(s))`` (DDPG, one-step return).

The critic also ranks: each proposal draws ``screen`` noisy actions around the actor's action
and keeps the new architecture the critic rates highest. ``learn=False`` is the ablation "top-K
local search": actor and critic are never trained and nothing is ranked, so every proposal is
the first new architecture among noisy draws around the (untrained) actor's action, which is
the per-decision mode of the top-K.

Engineering beyond the papers (each one a config knob, see docs/agents/l2nas.md): reward
normalisation on the scale of the best rewards, an actor skip term toward the state, never
re-proposing an architecture already asked (noise grows until the argmax is new), critic
screening, and constant memory (ring buffer + elite, seen-set bitmap).

The networks are NumPy with hand-written gradients (``l2nas_parts``): at this size PyTorch's
per-operation overhead cost ~2 ms per trial, the NumPy version a few tenths of that.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlnas.agents.base import (
    Agent,
    AgentConfig,
    Proposal,
    Result,
    rng_state,
    set_rng_state,
)
from rlnas.agents.l2nas_parts import (
    Actor,
    Adam,
    Critic,
    ReplayBuffer,
    SeenSet,
    TopScale,
    decayed,
    neighbours_of,
    one_and_two_edits,
    pinball_grad,
    pinball_loss,
)
from rlnas.errors import ConfigError
from rlnas.spaces.base import Space

TRANSFER_MODES = ("both", "architectures", "weights")
"""What :meth:`L2NASAgent.load_policy` takes from the source search (config field ``transfer``)."""


SIZE_LIMITS = {"top_k": 10_000, "hidden": 4096, "batch": 65_536, "buffer_capacity": 1_000_000, "top_n": 100_000,
               "screen": 100_000, "pool": 100_000, "max_retries": 10_000, "critics": 64}
"""Largest value of each size option (each at least 1): beyond them the networks or buffers exhaust memory."""
COUNT_LIMITS = {"updates_per_result": 1_000, "random_pool": 100_000, "warmup": None, "initial_random": None}
"""Largest value of each count option that may be 0 (``None``: unbounded): more random cells than this
exhaust memory, more updates per result stall the search."""


@dataclass
class L2NASConfig(AgentConfig):
    """Options of the L²NAS agent (defaults tuned on NAS-Bench-201 seeds 0-49, see docs/agents/l2nas.md)."""

    learn: bool = True
    """Train actor and critic and rank proposals with the critic; false = the "top-K local search" ablation."""
    train_actor: bool = True
    """With learning: move the actor along the critic's gradient (false: the actor stays at the top-K mode)."""
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
    reward_clip: float = 3.0
    """Critic targets are z-scores w.r.t. the ``top_n`` best rewards, clipped below at ``-reward_clip``."""
    batch: int = 32
    """Replay samples per gradient step."""
    updates_per_result: int = 4
    """Critic + actor gradient steps per successful result told."""
    warmup: int = 8
    """Successful results needed before the first gradient step."""
    buffer_capacity: int = 1000
    """Most recent (state, architecture, reward) triples kept (the ``top_n`` best are kept as well)."""
    top_n: int = 32
    """Size of the elite: the best entries, which batches favour and which set the reward scale."""
    top_share: float = 0.5
    """Share of every batch drawn from the ``top_n`` best entries (the rest: uniform over the ring)."""
    initial_random: int = 10
    """First proposals that are uniformly random architectures (one-hot actions)."""
    epsilon_start: float = 0.1
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
    """Weight of the state added to the actor's logits (an untrained actor's argmax is the top-K mode)."""
    screen: int = 32
    """Noisy actions drawn per noise level; the critic keeps the best new one (``learn=False``: the first)."""
    pool: int = 32
    """With learning: widen the noise until at least this many new architectures are drawn for the critic to rank."""
    neighbours: int = 0
    """With learning, the critic also ranks new cells 1 edit from the top-K (1), and 2 edits from the best (2)."""
    random_pool: int = 0
    """With learning, this many uniformly random new cells join the pool the critic ranks."""
    elite_neighbours: bool = False
    """With ``neighbours``, take the one-edit neighbours of the whole elite (``top_n``) instead of the top-K."""
    critics: int = 1
    """Members of the critic ensemble (each its own initialisation and batches)."""
    optimism: float = 0.0
    """The ranking score is the members' mean prediction plus ``optimism`` times their standard deviation."""
    avoid_repeats: bool = True
    """Never re-propose an architecture already asked (while unseen ones remain)."""
    max_retries: int = 60
    """Noise redraws (each ``retry_growth`` times wider) before falling back to a random new architecture."""
    retry_growth: float = 1.1
    """Factor by which the noise std grows at every redraw that gave only already-seen architectures."""
    transfer: str = "both"
    """What ``load_policy`` (``--init-from``) takes: ``architectures``, ``weights`` (actor, critic) or ``both``."""

    def __post_init__(self) -> None:
        for name in ("learn", "train_actor", "avoid_repeats", "elite_neighbours"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"l2nas option {name} must be true or false, got {getattr(self, name)!r}")
        for name, most in SIZE_LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise ConfigError(f"l2nas option {name} must be an integer from 1 to {most:,}, got {value!r}")
        for name, most in COUNT_LIMITS.items():
            value = getattr(self, name)
            too_many = most is not None and isinstance(value, int) and value > most
            if not isinstance(value, int) or isinstance(value, bool) or value < 0 or too_many:
                bound = ">= 0" if most is None else f"from 0 to {most:,}"
                raise ConfigError(f"l2nas option {name} must be an integer {bound}, got {value!r}")
        if not 0.0 < self.quantile < 1.0:
            raise ConfigError(f"l2nas option quantile must lie strictly between 0 and 1, got {self.quantile!r}")
        for name in ("top_share", "epsilon_start", "epsilon_end"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"l2nas option {name} must lie in [0, 1], got {getattr(self, name)!r}")
        for name in ("actor_lr", "critic_lr", "logit_bound", "reward_clip"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"l2nas option {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("noise_start", "noise_end", "noise_halflife", "epsilon_halflife", "state_skip"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"l2nas option {name} must be >= 0, got {getattr(self, name)!r}")
        for floor, start in (("epsilon_end", "epsilon_start"), ("noise_end", "noise_start")):
            if getattr(self, floor) > getattr(self, start):
                raise ConfigError(f"l2nas option {floor} is the floor {start} decays to: at most {start} "
                                  f"({getattr(self, start)!r}), got {getattr(self, floor)!r}")
        if self.neighbours not in (0, 1, 2) or isinstance(self.neighbours, bool):
            raise ConfigError(f"l2nas option neighbours must be 0, 1 or 2, got {self.neighbours!r}")
        if not self.optimism >= 0:
            raise ConfigError(f"l2nas option optimism must be >= 0, got {self.optimism!r}")
        if not self.retry_growth >= 1.0:
            raise ConfigError(f"l2nas option retry_growth must be >= 1, got {self.retry_growth!r}")
        if self.transfer not in TRANSFER_MODES:
            raise ConfigError(f"l2nas option transfer must be one of {list(TRANSFER_MODES)}, got {self.transfer!r}")


MAX_NOISE_WIDENING = 1e6
"""Widest noise of a retry, as a multiple of the current noise: far beyond it every choice is
equally likely already."""


def top_retry_level(growth: float) -> int:
    """The highest retry level worth drawing at: ``growth ** level`` at most :data:`MAX_NOISE_WIDENING`."""
    return 0 if growth <= 1.0 else int(math.log(MAX_NOISE_WIDENING) / math.log(growth))


class L2NASAgent(Agent):
    """Continuous-action actor-critic NAS on any categorical space (asynchronous: ``batch_size`` 1)."""

    name = "l2nas"
    Config = L2NASConfig
    config: L2NASConfig

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> None:
        super().__init__(space, config, seed=seed, device=device)
        cfg = self.config
        self.rng = np.random.default_rng(seed)
        init_rng = np.random.default_rng(int(self.rng.integers(2**62)))
        self.sizes = np.array(space.sizes)
        self.offsets = np.array(space.offsets)
        # Equal block sizes (NB201: 6 x 5) let the per-block argmax run as one reshape.
        self._uniform_k = int(self.sizes[0]) if len(set(space.sizes)) == 1 else None
        self.actor = Actor(space.sizes, cfg.hidden, cfg.logit_bound, cfg.state_skip, init_rng)
        self.critic = Critic(space.dim, cfg.hidden, init_rng, members=cfg.critics)
        self.edits = one_and_two_edits(space.sizes, two=cfg.neighbours == 2)
        self.actor_opt = Adam(len(self.actor.net.theta), cfg.actor_lr)
        self.critic_opt = Adam(len(self.critic.net.theta), cfg.critic_lr)
        self.buffer = ReplayBuffer(space.dim, len(space.sizes), cfg.buffer_capacity, cfg.top_n)
        self.scale = TopScale(cfg.reward_clip)
        # Spaces that know which candidates are the same architecture (nbgraph) say so.
        canonical = getattr(space, "canonical_codes", None)
        self.seen = SeenSet(space.sizes, canonical() if callable(canonical) else None)
        # The top-K results so far as (reward, order told, indices), best first (ties: earliest).
        self.top: list[tuple[float, int, tuple[int, ...]]] = []
        # Transferred architectures (load_policy) still to propose, and the prior state they
        # define until this search has results of its own.
        self.transferred: list[tuple[int, ...]] = []
        self.prior: list[tuple[int, ...]] = []
        self.asked = self.told = self.failed = self.updates = self.successes = 0
        self.retry_level = 0                                       # noise level of the last actor proposal
        self._state_cache: np.ndarray | None = None
        self._mean_cache: np.ndarray | None = None                # actor(state) until state or actor change

    # ----------------------------------------------------------------- state
    def encode_rows(self, rows: np.ndarray) -> np.ndarray:
        """One-hot encodings (rows × ``space.dim``) of rows of choice indices."""
        rows = np.atleast_2d(rows)
        x = np.zeros((len(rows), self.space.dim), dtype=np.float32)
        x[np.arange(len(rows))[:, None], self.offsets + rows] = 1.0
        return x

    def encode_indices(self, indices: Sequence[int]) -> np.ndarray:
        """Concatenated one-hot vector of choice ``indices`` (same as ``space.encode``)."""
        return self.encode_rows(np.asarray(indices)[None])[0]

    def current_state(self) -> np.ndarray:
        """Mean encoding of the top-K architectures so far; before any result, the uniform vector
        (or, after :meth:`load_policy` with architectures, the mean encoding of the transferred top-K)."""
        if self._state_cache is None:
            members = [ix for _, _, ix in self.top] or self.prior
            if not members:
                self._state_cache = np.concatenate([np.full(k, 1.0 / k) for k in self.sizes]).astype(np.float32)
            else:
                self._state_cache = self.encode_rows(np.array(members)).mean(axis=0)
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

    def _new_mask(self, rows: np.ndarray) -> np.ndarray:
        """Which rows of choice indices are architectures not asked yet (all, when repeats are allowed)."""
        if not self.config.avoid_repeats or self.seen.exhausted():
            return np.ones(len(rows), dtype=bool)
        return ~self.seen.contains(rows)

    def _random_action(self) -> np.ndarray:
        """One-hot action of a uniformly random architecture (a new one while any is left)."""
        for _ in range(1000):
            indices = self.rng.integers(self.sizes)
            if self._new_mask(indices[None])[0]:
                break
        return self.encode_indices(indices)

    def _ranking(self) -> bool:
        return self.config.learn and self.updates > 0

    def _actor_action(self, state: np.ndarray, std: float) -> tuple[np.ndarray, str] | None:
        """Noisy actor action whose argmax is new; when learning, the one the critic rates highest.

        Draw ``screen`` noisy actions with std ``std · retry_growth^level``, one level up
        after another, collecting the distinct new architectures they decode to. Without
        learning, stop at the first level that gave any and keep the first one (the nearest
        new neighbours of the actor's argmax). With learning, go on until ``pool`` of them are
        collected and keep the one the critic rates highest. The next proposal starts two
        levels below the level reached (so the widening is not redone from scratch every
        time, and the noise comes back down when it can). ``None`` after ``max_retries`` levels
        without any new architecture.
        """
        cfg = self.config
        if self._mean_cache is None:
            self._mean_cache = self.actor.forward(state[None])[0][0]
        mean = self._mean_cache
        wanted = cfg.pool if self._ranking() else 1
        start = max(self.retry_level - 2, 0)
        actions: list[np.ndarray] = []
        rows: dict[bytes, np.ndarray] = {}
        top = top_retry_level(cfg.retry_growth)
        for level in range(start, start + cfg.max_retries):
            level = min(level, top)  # wider noise is no use, and the power would overflow
            draws = mean + (std * cfg.retry_growth ** level) * self.rng.standard_normal((cfg.screen, len(mean)))
            decoded = self._argmax(draws)
            for i in np.flatnonzero(self._new_mask(decoded)):
                code = decoded[i].tobytes()
                if code not in rows:
                    rows[code] = decoded[i]
                    actions.append(draws[i])
            if len(rows) >= wanted:
                break
        if not rows:
            return None
        self.retry_level = level
        if not self._ranking():
            return actions[0], "actor"
        pool = np.array(list(rows.values()))
        for extra in (self._neighbour_rows(), self._random_rows()):
            if len(extra):
                pool = np.vstack([pool, extra])
        if len(pool) == 1:
            return actions[0], "actor"
        best = int(np.argmax(self._score(state, self.encode_rows(pool))))
        if best < len(actions):
            return actions[best], "actor"
        return self.encode_indices(pool[best]), "neighbour"

    def _neighbour_rows(self) -> np.ndarray:
        """New cells one edit from a top-K member (``neighbours >= 1``) or two edits from the best
        (``neighbours == 2``), each class of equivalent cells once."""
        if not self.config.neighbours or not self.top:
            return np.zeros((0, len(self.sizes)), dtype=np.int64)
        members = np.array([ix for _, _, ix in self.top])
        if self.config.elite_neighbours and self.buffer.elite_size:
            elite = self.buffer.elite_archs[:self.buffer.elite_size]
            rows = neighbours_of(elite[np.argsort(-self.buffer.elite(), kind="stable")], self.sizes, self.edits[0])
        else:
            rows = neighbours_of(members, self.sizes, self.edits[0])
        if self.config.neighbours == 2:
            rows = np.vstack([rows, neighbours_of(members[:1], self.sizes, self.edits[1])])
        rows = rows[self._new_mask(rows)]
        _, first = np.unique(self.seen.slots(rows), axis=0, return_index=True)
        return rows[np.sort(first)]

    def _random_rows(self) -> np.ndarray:
        """``random_pool`` uniformly random new cells (fewer when some draws were seen already)."""
        if not self.config.random_pool:
            return np.zeros((0, len(self.sizes)), dtype=np.int64)
        rows = self.rng.integers(self.sizes, size=(self.config.random_pool, len(self.sizes)))
        return rows[self._new_mask(rows)]

    def _score(self, state: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Ranking score of candidate one-hot rows: the critics' mean plus ``optimism`` times their spread."""
        q = self.critic.forward(state[None], candidates)[0]
        if self.config.optimism and len(q) > 1:
            return q.mean(axis=0) + self.config.optimism * q.std(axis=0)
        return q.mean(axis=0)

    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose ``n`` architectures; ``info`` holds the raw action, the state and the exploration."""
        proposals = []
        for _ in range(n):
            step, state = self.asked, self.current_state()
            eps, std = self.epsilon(step), self.noise_std(step)
            while self.transferred and not self._new_mask(np.array([self.transferred[0]]))[0]:
                self.transferred.pop(0)
            action = None
            if self.transferred:
                action, source = self.encode_indices(self.transferred.pop(0)), "transfer"
            elif self.rng.random() < eps:
                action, source = self._random_action(), "random"
            else:
                chosen = self._actor_action(state, std)
                action, source = chosen if chosen is not None else (self._random_action(), "fallback")
            indices = tuple(int(v) for v in self._argmax(action[None])[0])
            self.seen.add(indices)
            self.asked += 1
            info = {"action": [float(v) for v in action], "state": [float(v) for v in state],
                    "source": source, "epsilon": eps, "noise_std": std, "q_pred": self._q_pred(state, indices)}
            proposals.append(Proposal(self.space.from_indices(indices), info))
        return proposals

    def _q_pred(self, state: np.ndarray, indices: Sequence[int]) -> float:
        """Critic's prediction, on the reward scale, for (state, architecture) (NaN before any update)."""
        if not self._ranking():
            return math.nan
        return self.scale.inverse(float(self._score(state, self.encode_indices(indices)[None])[0]))

    # ------------------------------------------------------------------ tell
    def _record(self, indices: tuple[int, ...], reward: float) -> None:
        """Keep the top-K list (ties: the earliest first)."""
        k = self.config.top_k
        if len(self.top) == k and reward <= self.top[-1][0]:
            return
        self.top.append((reward, self.successes, indices))
        self.top.sort(key=lambda entry: (-entry[0], entry[1]))
        del self.top[k:]
        self._state_cache = self._mean_cache = None

    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Store results (failed ones are only counted) and, when learning, train critic and actor."""
        cfg = self.config
        successes = 0
        last_q = math.nan
        for proposal, reward in results:
            self.told += 1
            indices = tuple(self.space.indices(proposal.candidate))
            self.seen.add(indices)
            if reward is None or not math.isfinite(float(reward)):
                self.failed += 1
                continue
            reward = float(reward)
            state = proposal.info.get("state")
            state = self.current_state() if state is None else np.asarray(state, dtype=np.float32)
            self._record(indices, reward)
            self.buffer.add(state, indices, reward)
            self.successes += 1
            last_q = float(proposal.info.get("q_pred", math.nan))
            successes += 1
        if successes:
            self.scale.fit(self.buffer.elite())
        losses = []
        if cfg.learn and self.successes >= max(cfg.warmup, 1):
            losses = [self._update() for _ in range(cfg.updates_per_result * successes)]
        return {
            "critic_loss": float(np.mean([c for c, _ in losses])) if losses else math.nan,
            "actor_q": float(np.mean([a for _, a in losses])) if losses and cfg.train_actor else math.nan,
            "epsilon": self.epsilon(self.asked),
            "noise_std": self.noise_std(self.asked),
            "topk_mean_reward": float(np.mean([r for r, _, _ in self.top])) if self.top else math.nan,
            "best_reward": self.top[0][0] if self.top else math.nan,
            "buffer_size": float(len(self.buffer)),
            "q_pred": last_q,
            "updates": float(self.updates),
            "failed": float(self.failed),
            "retry_level": float(self.retry_level),
        }

    def _update(self) -> tuple[float, float]:
        """One critic step (pinball loss) and one actor step (maximise the critic); returns the critic's
        loss and the actor's mean critic value (NaN when the actor is not trained)."""
        cfg = self.config
        members = cfg.critics
        states, archs, rewards = self.buffer.sample(self.rng, cfg.batch * members, cfg.top_share)
        if members > 1:  # every member its own batch, each with its share of elite rows
            order = np.arange(cfg.batch * members).reshape(-1, members).T.reshape(-1)
            states, archs, rewards = states[order], archs[order], rewards[order]
        targets = self.scale(rewards).reshape(members, cfg.batch)
        states = states.reshape(members, cfg.batch, -1)

        q, inputs = self.critic.forward(states, self.encode_rows(archs).reshape(members, cfg.batch, -1))
        critic_loss = pinball_loss(q, targets, cfg.quantile)
        self.critic.learn(inputs, members * pinball_grad(q, targets, cfg.quantile))
        self.critic_opt.step(self.critic.net.theta, self.critic.net.grad)
        self.updates += 1

        if not cfg.train_actor:
            return critic_loss, math.nan
        # The actor ascends Q(s, actor(s)) on the batch's states plus the current one; the
        # critic only passes the gradient through to the action (its weights stay put).
        actor_states = np.vstack([states[0], self.current_state()[None]])
        action, actor_cache = self.actor.forward(actor_states)
        actor_q, critic_inputs = self.critic.forward(actor_states, action)
        grad_q = np.full(actor_q.shape, -1.0 / actor_q.size)
        grad_action = self.critic.backward(critic_inputs, grad_q, params=False).sum(axis=0)
        self.actor.backward(actor_cache, grad_action)
        self.actor_opt.step(self.actor.net.theta, self.actor.net.grad)
        self._mean_cache = None
        return critic_loss, float(actor_q.mean())

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Networks, optimizers, replay buffer, top-K, seen set, transfer prior, RNG and counters
        (all of bounded size: the checkpoint does not grow with the number of trials)."""
        return {
            "actor": self.actor.net.theta.copy(),
            "critic": self.critic.net.theta.copy(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "buffer": self.buffer.state_dict(),
            "top": [[reward, order, list(indices)] for reward, order, indices in self.top],
            "seen": self.seen.state_dict(),
            "transferred": [list(indices) for indices in self.transferred],
            "prior": [list(indices) for indices in self.prior],
            "rng": rng_state(self.rng),
            "counters": {"asked": self.asked, "told": self.told, "failed": self.failed, "updates": self.updates,
                         "successes": self.successes, "retry_level": self.retry_level},
        }

    def _load_weights(self, state: Mapping[str, Any]) -> None:
        for net, key in ((self.actor.net, "actor"), (self.critic.net, "critic")):
            weights = np.asarray(state[key]).reshape(-1)
            if weights.shape != net.theta.shape:
                raise ConfigError(f"l2nas state: {key} has {weights.size} weights, this agent's has {net.theta.size} "
                                  "(another space, hidden width or number of critics)")
            net.theta[:] = weights
        self._mean_cache = None

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self._load_weights(state)
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.buffer.load_state_dict(state["buffer"])
        self.scale.fit(self.buffer.elite())
        self.top = [(float(r), int(order), tuple(int(i) for i in ix)) for r, order, ix in state["top"]]
        self.seen.load_state_dict(state["seen"])
        self.transferred = [tuple(int(i) for i in ix) for ix in state.get("transferred", [])]
        self.prior = [tuple(int(i) for i in ix) for ix in state.get("prior", [])]
        self._state_cache = None
        set_rng_state(self.rng, state["rng"])
        counters = state["counters"]
        self.asked, self.told = int(counters["asked"]), int(counters["told"])
        self.failed, self.updates = int(counters["failed"]), int(counters["updates"])
        self.successes, self.retry_level = int(counters["successes"]), int(counters["retry_level"])

    def load_policy(self, state: Mapping[str, Any]) -> None:
        """Policy transfer from a search of the same space on another task (``config.transfer``).

        ``weights``: the actor's and the critic's weights (the critic predicts a reward
        normalised per search, so its scale carries over). ``architectures``: the source's
        top-K architectures without their rewards; they are proposed first (instead of the
        first random ones) and, until this search has results of its own, their mean encoding
        is the state. ``both``: the two. Never taken: rewards, replay buffer, the optimizers'
        moments, the counters and the RNG (another task, another reward scale; this agent
        keeps its own seed, and its exploration schedules start from the beginning).
        """
        mode = self.config.transfer
        if mode in ("both", "weights"):
            self._load_weights(state)
        if mode in ("both", "architectures"):
            top = [tuple(int(i) for i in ix) for _, _, ix in state["top"]]
            self.prior = [tuple(self.space.indices(self.space.from_indices(ix))) for ix in top[:self.config.top_k]]
            self.transferred = list(self.prior)
            self._state_cache = self._mean_cache = None
