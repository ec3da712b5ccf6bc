"""Local search over one-edit neighbours with restarts (White, Nolen, Siems & Hutter, 2020).

Start from the best of ``initial_random`` uniformly random architectures (the *centre*). Its
neighbours are the architectures that differ in exactly one decision; they are evaluated in a
random order. With ``move="best"`` the whole neighbourhood is evaluated and the search moves
to its best member if that beats the centre; with ``move="first"`` it moves to the first
neighbour that beats the centre. A centre no neighbour beats is a local optimum: the search
restarts from a new random architecture. No architecture is ever evaluated twice (a
neighbour evaluated earlier is judged by its known reward without spending a query), and
candidates of one :meth:`~rlnas.spaces.base.Space.identity` (NAS-Bench-Graph's equivalent
cells) are one architecture.
Works on any categorical space; asynchronous (``ask(n)`` may run ahead of ``tell``).
"""
from __future__ import annotations

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
from rlnas.errors import ConfigError
from rlnas.spaces.base import Space

MOVES = ("best", "first")


@dataclass
class LocalConfig(AgentConfig):
    """Options of local search."""

    initial_random: int = 10
    """Random architectures evaluated before the first climb; the best of them is the first centre."""
    move: str = "best"
    """"best": evaluate the whole neighbourhood, move to its best member; "first": move at the first improvement."""

    def __post_init__(self) -> None:
        if isinstance(self.initial_random, bool) or not isinstance(self.initial_random, int) or self.initial_random < 1:
            raise ConfigError(f"local: initial_random must be a positive integer, got {self.initial_random!r}")
        if self.move not in MOVES:
            raise ConfigError(f"local: unknown move {self.move!r} (choices: {', '.join(MOVES)})")


class LocalAgent(Agent):
    """One-edit local search with random restarts, never evaluating an architecture twice."""

    name = "local"
    Config = LocalConfig
    config: LocalConfig

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> None:
        super().__init__(space, config, seed=seed, device=device)
        self.rng = np.random.default_rng(seed)
        self.known: dict[tuple[int, ...], float | None] = {}   # evaluated architectures -> reward (None: failed)
        self.asked: set[tuple[int, ...]] = set()
        # known and asked hold one representative (the first seen) per identity; None: every
        # candidate is its own (the space keeps Space.identity)
        self.twins: dict[str, tuple[int, ...]] | None = None if space.identity_is_key else {}
        self.centre: tuple[tuple[int, ...], float] | None = None
        self.queue: list[tuple[int, ...]] = []                  # neighbours of the centre still to ask
        self.waiting: set[tuple[int, ...]] = set()              # asked neighbours of the centre not told yet
        self.best_neighbour: tuple[tuple[int, ...], float] | None = None
        self.restart: tuple[int, ...] | None = None             # random architecture asked as the next centre
        self.told = self.restarts = self.moves = 0

    # ------------------------------------------------------------------ ask
    def ask(self, n: int = 1) -> list[Proposal]:
        """``n`` proposals: random ones at the start and at restarts, neighbours of the centre otherwise."""
        proposals = []
        for _ in range(n):
            if self.centre is not None and self.queue:
                indices, origin = self.queue.pop(), "neighbour"
                self.waiting.add(indices)
            elif self.centre is None and self.restarts and self.restart is None:
                indices, origin = self._random_new(), "restart"
                self.restart = indices
            else:  # the first random ones, or filler while results are outstanding
                indices, origin = self._random_new(), "random"
            self.asked.add(self._same(indices))
            proposals.append(Proposal(self.space.from_indices(indices), {"origin": origin}))
        return proposals

    def _random_new(self) -> tuple[int, ...]:
        """A uniformly random architecture not asked yet (any, once the space is nearly exhausted)."""
        networks = self.space.network_count()
        if networks is not None and len(self.asked) >= networks:  # exhausted: no draw can be new
            return tuple(int(i) for i in self.rng.integers(self.space.sizes))
        for _ in range(1000):
            indices = tuple(int(i) for i in self.rng.integers(self.space.sizes))
            if self._same(indices) not in self.asked:
                return indices
        return indices

    def _same(self, indices: tuple[int, ...]) -> tuple[int, ...]:
        """The representative of the architecture ``indices`` (``indices`` itself when it is the first seen)."""
        if self.twins is None:
            return indices
        return self.twins.setdefault(self.space.identity(self.space.from_indices(indices)), indices)

    def neighbours(self, indices: Sequence[int]) -> list[tuple[int, ...]]:
        """Every architecture that differs from ``indices`` in exactly one decision."""
        out = []
        for d, size in enumerate(self.space.sizes):
            for choice in range(size):
                if choice != indices[d]:
                    out.append(tuple(indices[:d]) + (choice,) + tuple(indices[d + 1:]))
        return out

    # ----------------------------------------------------------------- tell
    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Record rewards; move the centre or restart as the rule says."""
        for proposal, reward in results:
            self.told += 1
            indices = tuple(self.space.indices(proposal.candidate))
            value = None if reward is None or not np.isfinite(reward) else float(reward)
            self.known[self._same(indices)] = value
            self.asked.add(self._same(indices))
            self.waiting.discard(indices)
            if self.centre is not None:
                self._consider(indices, value)
            elif indices == self.restart:
                self._start_from(indices)
            elif not self.restarts and len(self.known) >= self.config.initial_random:
                scored = [(r, ix) for ix, r in self.known.items() if r is not None]
                self._start_from(max(scored)[1] if scored else indices)
        self._finish_sweep()
        return {"centre_reward": self.centre[1] if self.centre else float("nan"),
                "restarts": float(self.restarts), "moves": float(self.moves), "queue": float(len(self.queue))}

    def _start_from(self, indices: tuple[int, ...]) -> None:
        """Make ``indices`` the centre and queue its unknown neighbours; known ones are judged at once."""
        reward = self.known.get(self._same(indices))
        self.centre = (indices, float("-inf") if reward is None else reward)
        self.restart, self.best_neighbour = None, None
        order = self.neighbours(indices)
        self.rng.shuffle(order)
        self.queue, self.waiting = [], set()
        queued: set[tuple[int, ...]] = set()
        for nb in order:
            same = self._same(nb)
            if same in self.known:
                value = self.known[same]
                if value is not None and (self.best_neighbour is None or value > self.best_neighbour[1]):
                    self.best_neighbour = (nb, value)
            elif same not in self.asked and same not in queued:
                self.queue.append(nb)
                queued.add(same)
        best = self.best_neighbour
        if self.config.move == "first" and best is not None and best[1] > self.centre[1]:
            self.moves += 1
            self._start_from(best[0])

    def _consider(self, indices: tuple[int, ...], reward: float | None) -> None:
        """Take the reward of a told architecture into account if it neighbours the centre."""
        if reward is None or self.centre is None or sum(a != b for a, b in zip(indices, self.centre[0])) != 1:
            return
        if self.best_neighbour is None or reward > self.best_neighbour[1]:
            self.best_neighbour = (indices, reward)
        if self.config.move == "first" and reward > self.centre[1]:
            self.moves += 1
            self._start_from(indices)

    def _finish_sweep(self) -> None:
        """Once the whole neighbourhood is told: move to the best neighbour if it is better, else restart."""
        while self.centre is not None and not self.queue and not self.waiting:
            best = self.best_neighbour
            if best is not None and best[1] > self.centre[1]:
                self.moves += 1
                self._start_from(best[0])
            else:
                self.restarts += 1
                self.centre, self.restart, self.best_neighbour = None, None, None

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Known rewards, centre, queue and RNG (plain lists)."""
        return {
            "rng": rng_state(self.rng),
            "known": [[list(ix), r] for ix, r in self.known.items()],
            "asked": [list(ix) for ix in self.asked],
            "centre": None if self.centre is None else [list(self.centre[0]), self.centre[1]],
            "queue": [list(ix) for ix in self.queue],
            "waiting": [list(ix) for ix in self.waiting],
            "best_neighbour": None if self.best_neighbour is None else [list(self.best_neighbour[0]),
                                                                       self.best_neighbour[1]],
            "restart": None if self.restart is None else list(self.restart),
            "counters": [self.told, self.restarts, self.moves],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        set_rng_state(self.rng, state["rng"])
        self.known = {tuple(int(i) for i in ix): (None if r is None else float(r)) for ix, r in state["known"]}
        self.asked = {tuple(int(i) for i in ix) for ix in state["asked"]}
        if self.twins is not None:
            self.twins = {}
            for ix in [*self.known, *self.asked]:
                self._same(ix)
        self.centre = None if state["centre"] is None else (tuple(int(i) for i in state["centre"][0]),
                                                            float(state["centre"][1]))
        self.queue = [tuple(int(i) for i in ix) for ix in state["queue"]]
        self.waiting = {tuple(int(i) for i in ix) for ix in state["waiting"]}
        best = state["best_neighbour"]
        self.best_neighbour = None if best is None else (tuple(int(i) for i in best[0]), float(best[1]))
        self.restart = None if state["restart"] is None else tuple(int(i) for i in state["restart"])
        self.told, self.restarts, self.moves = (int(v) for v in state["counters"])
