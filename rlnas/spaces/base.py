"""Categorical search spaces: decisions, candidates, encodings, keys and fingerprints.

Pure Python + NumPy: nothing here imports torch.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlnas.errors import ConfigError, InvalidCandidate

Choice = str | int | float | bool


@dataclass(frozen=True)
class Categorical:
    """One decision of a space: a name and an ordered tuple of JSON-able choices."""

    name: str
    choices: tuple[Choice, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"a decision needs a non-empty name (a str), got {self.name!r}")
        if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, Iterable):
            raise ConfigError(f"decision {self.name!r}: choices must be a list or tuple of choices, got "
                              f"{self.choices!r}")  # a str would be split into its letters
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise ConfigError(f"decision {self.name!r} has no choices")
        for choice in self.choices:
            infinite_or_nan = isinstance(choice, float) and not math.isfinite(choice)
            if not isinstance(choice, (str, int, float, bool)) or infinite_or_nan:
                raise ConfigError(f"decision {self.name!r}: choice {choice!r} is not a str, int, finite float "
                                  "or bool (choices are JSON values)")
        if len(set(self.choices)) != len(self.choices):
            raise ConfigError(f"decision {self.name!r} has repeated choices")

    @property
    def size(self) -> int:
        """Number of choices."""
        return len(self.choices)

    def index(self, choice: Choice) -> int:
        """Position of ``choice``; raises :class:`InvalidCandidate` when it is not a choice."""
        try:
            return self.choices.index(choice)
        except ValueError:
            raise InvalidCandidate(
                f"decision {self.name!r}: {choice!r} is not one of {list(self.choices)}"
            ) from None


class Candidate(Mapping[str, Choice]):
    """An immutable, hashable assignment of one choice to every decision of a space."""

    __slots__ = ("_items", "_dict", "_hash")

    def __init__(self, items: Mapping[str, Choice] | Iterable[tuple[str, Choice]]):
        pairs = tuple(items.items()) if isinstance(items, Mapping) else tuple(items)
        self._items = pairs
        self._dict = dict(pairs)
        self._hash = hash(pairs)

    def __getitem__(self, name: str) -> Choice:
        return self._dict[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Candidate):
            return self._items == other._items
        return isinstance(other, Mapping) and self._dict == dict(other)

    def __repr__(self) -> str:
        return f"Candidate({self._dict!r})"

    def to_dict(self) -> dict[str, Choice]:
        """A plain ``dict`` copy, for JSON."""
        return dict(self._dict)


class Space:
    """An ordered tuple of categorical decisions.

    Subclasses give a readable :meth:`key` (e.g. the NAS-Bench-201 arch string) and
    :meth:`from_key`; the default key is the compact JSON list of the choices.
    """

    def __init__(self, name: str, decisions: Iterable[Categorical]):
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a space needs a non-empty name (a str), got {name!r}")
        self.name = name
        self.decisions: tuple[Categorical, ...] = tuple(decisions)
        if not self.decisions:
            raise ConfigError(f"space {name!r} has no decisions")
        wrong = next((d for d in self.decisions if not isinstance(d, Categorical)), None)
        if wrong is not None:
            raise ConfigError(f"space {name!r}: a decision is a Categorical, got {type(wrong).__name__} {wrong!r}")
        names = [d.name for d in self.decisions]
        if len(set(names)) != len(names):
            raise ConfigError(f"space {name!r} has repeated decision names")
        self._by_name = {d.name: d for d in self.decisions}
        self._index_of = tuple({c: i for i, c in enumerate(d.choices)} for d in self.decisions)
        self.sizes: tuple[int, ...] = tuple(d.size for d in self.decisions)
        self.offsets: tuple[int, ...] = tuple(int(x) for x in np.cumsum((0,) + self.sizes[:-1]))
        self.dim: int = int(sum(self.sizes))

    # ----------------------------------------------------------------- basics
    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, decisions={len(self.decisions)}, dim={self.dim})"

    def __len__(self) -> int:
        return len(self.decisions)

    @property
    def size(self) -> int:
        """Number of distinct candidates (product of the cardinalities)."""
        return int(np.prod([int(s) for s in self.sizes], dtype=object))

    def decision(self, name: str) -> Categorical:
        """The decision called ``name``."""
        return self._by_name[name]

    # ------------------------------------------------------------ candidates
    def candidate(self, choices: Mapping[str, Choice]) -> Candidate:
        """Validate ``choices`` and return them as a :class:`Candidate` in decision order, each value the
        space's own choice (``0`` given for the choice ``False``, or ``5.0`` for ``5``, becomes it: a
        candidate's key does not depend on how its choices were typed)."""
        self.validate(choices)
        return Candidate((d.name, d.choices[index_of[choices[d.name]]])
                         for d, index_of in zip(self.decisions, self._index_of))

    def validate(self, candidate: Mapping[str, Choice]) -> None:
        """Raise :class:`InvalidCandidate` naming the first problem; return ``None`` if valid."""
        if not isinstance(candidate, Mapping):
            raise InvalidCandidate(f"a candidate of {self.name!r} must be a mapping, got {type(candidate).__name__}")
        missing = [d.name for d in self.decisions if d.name not in candidate]
        if missing:
            raise InvalidCandidate(f"candidate for space {self.name!r} misses decision(s) {missing}")
        extra = [k for k in candidate if k not in self._by_name]
        if extra:
            raise InvalidCandidate(f"candidate for space {self.name!r} has unknown decision(s) {extra}")
        for d, index_of in zip(self.decisions, self._index_of):
            if candidate[d.name] not in index_of:
                d.index(candidate[d.name])  # raises with the message

    def from_indices(self, indices: Iterable[int]) -> Candidate:
        """The candidate whose i-th decision takes its ``indices[i]``-th choice."""
        idx = [int(i) for i in indices]
        if len(idx) != len(self.decisions):
            raise InvalidCandidate(f"space {self.name!r} needs {len(self.decisions)} indices, got {len(idx)}")
        pairs = []
        for d, i in zip(self.decisions, idx):
            if not 0 <= i < d.size:
                raise InvalidCandidate(f"decision {d.name!r}: index {i} is outside 0..{d.size - 1}")
            pairs.append((d.name, d.choices[i]))
        return Candidate(pairs)

    def indices(self, candidate: Mapping[str, Choice]) -> tuple[int, ...]:
        """Choice index of every decision, in decision order."""
        try:
            return tuple(index_of[candidate[d.name]] for d, index_of in zip(self.decisions, self._index_of))
        except (KeyError, TypeError):
            self.validate(candidate)
            raise

    def sample(self, rng: np.random.Generator) -> Candidate:
        """A uniformly random candidate drawn with ``rng``."""
        return self.from_indices(int(rng.integers(s)) for s in self.sizes)

    # -------------------------------------------------------------- encoding
    def encode(self, candidate: Mapping[str, Choice]) -> np.ndarray:
        """Concatenated one-hot vectors (float32, length :attr:`dim`)."""
        x = np.zeros(self.dim, dtype=np.float32)
        for offset, i in zip(self.offsets, self.indices(candidate)):
            x[offset + i] = 1.0
        return x

    def decode(self, x: np.ndarray | Iterable[float]) -> Candidate:
        """Argmax of every decision's block of ``x`` (ties go to the first choice)."""
        v = np.asarray(x, dtype=np.float64).reshape(-1)
        if v.shape[0] != self.dim:
            raise InvalidCandidate(f"space {self.name!r} decodes vectors of length {self.dim}, got {v.shape[0]}")
        if not np.all(np.isfinite(v)):
            raise InvalidCandidate(f"space {self.name!r}: cannot decode a vector holding NaN or inf")
        return self.from_indices(int(np.argmax(v[o : o + s])) for o, s in zip(self.offsets, self.sizes))

    # ------------------------------------------------------------------ keys
    def key(self, candidate: Mapping[str, Choice]) -> str:
        """Canonical string id of ``candidate`` (default: compact JSON list of its choices)."""
        self.validate(candidate)
        return json.dumps([candidate[d.name] for d in self.decisions], separators=(",", ":"))

    def identity(self, candidate: Mapping[str, Choice]) -> str:
        """What makes two candidates one network: candidates of equal identity are built, trained
        and scored alike, so a study with ``reuse_repeats`` answers one from the other, and
        "distinct architectures" counts identities. Default: :meth:`key` (every candidate is its own)."""
        return self.key(candidate)

    @property
    def identity_is_key(self) -> bool:
        """Whether :meth:`identity` is :meth:`key` (not overridden): every candidate is its own network."""
        return type(self).identity is Space.identity

    def network_count(self) -> int | None:
        """How many distinct :meth:`identity` values the space holds: :attr:`size` where the identity is
        the key; ``None`` (unknown) for a space that overrides :meth:`identity` without saying."""
        return self.size if self.identity_is_key else None

    def from_key(self, key: str) -> Candidate:
        """Inverse of :meth:`key`; raises :class:`InvalidCandidate` for a malformed key."""
        try:
            values = json.loads(key)
        except (json.JSONDecodeError, TypeError):
            raise InvalidCandidate(f"{key!r} is not a key of space {self.name!r} (expected a JSON list)") from None
        if not isinstance(values, list) or len(values) != len(self.decisions):
            raise InvalidCandidate(f"key {key!r} must list {len(self.decisions)} choices for space {self.name!r}")
        return self.candidate({d.name: v for d, v in zip(self.decisions, values)})

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """JSON-able description of the space (name and decisions)."""
        return {
            "name": self.name,
            "decisions": [{"name": d.name, "choices": list(d.choices)} for d in self.decisions],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Space:
        """A generic :class:`Space` with the decisions of ``data`` (see :meth:`to_json`)."""
        return Space(data["name"], [Categorical(d["name"], tuple(d["choices"])) for d in data["decisions"]])

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the canonical JSON of the decisions: equal iff the spaces are interchangeable."""
        body = json.dumps(self.to_json()["decisions"], sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def known(self) -> dict[str, Candidate]:
        """Well-known named candidates of this space (empty by default)."""
        return {}


def network_of(space: Space | None) -> Callable[[Any], str]:
    """A function giving a trial's (anything with ``key`` and ``candidate``) network: its
    :meth:`Space.identity`, or its key where ``space`` is ``None`` or keys every candidate apart."""
    if space is None or space.identity_is_key:
        return lambda trial: trial.key
    return lambda trial: space.identity(trial.candidate)


def count_networks(space: Space | None, trials: Iterable[Any]) -> int:
    """Distinct networks among ``trials`` (see :func:`network_of`)."""
    return len(set(map(network_of(space), trials)))
