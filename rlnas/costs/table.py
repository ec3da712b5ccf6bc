"""A per-layer latency lookup table: measure each distinct layer configuration once, then sum.

A network is cut into *units* whose latencies add up to the whole: the modules listed by the
model's ``latency_units()`` method when it has one (``[(name, module), ...]`` in forward order:
stem, each block, head), otherwise its direct children. A unit's key is its class, the shape of
its input (so the resolution is part of it) and its configuration: ``module.latency_key()``
when defined, else a hash of ``repr(module)`` (which lists channels, kernel sizes, strides,
activations of every sub-layer). Units that a forward pass never calls (inactive branches) are
left out.

Mobile spaces (those with ``space.arch``) skip the network: their units come from the layer
strings (:mod:`rlnas.costs.mobile`), one per block configuration and input resolution.

``LatencyTable.build`` finds the configurations a space can produce without enumerating the
space: from a base candidate with every optional layer on, it changes one decision at a time to
see which unit positions each decision touches, then for every position enumerates jointly the
choices of the decisions touching it (e.g. resolution, kernel and expansion of one block; the
widths of the stages around it), capped at ``max_combos`` combinations per position. Units met
later by ``predict`` that the table lacks are measured then and added (``misses`` counts them).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlnas.costs.measure import eval_mode, num_threads, time_call
from rlnas.errors import ConfigError
from rlnas.files import write_atomically
from rlnas.spaces.base import Candidate, Choice, Space

Shape = tuple[int, ...]
TIMING_DEFAULTS: dict[str, Any] = {"batch_size": 1, "threads": 1, "warmup": 3, "repeats": 10, "clock": "wall",
                                   "statistic": "median"}


@dataclass(frozen=True)
class Unit:
    """One measurable piece of a network: how to build it and the shapes of its inputs."""

    key: str
    """Identifies the configuration and input shapes; equal keys have equal latency."""
    build: Callable[[], nn.Module]
    """Returns the module (measured alone on random inputs of ``input_shapes``)."""
    input_shapes: tuple[Shape, ...]
    """Shape of every tensor argument of its forward, without the batch dimension."""


def _describe(module: nn.Module) -> str:
    if hasattr(module, "latency_key"):
        return str(module.latency_key())
    return hashlib.sha1(repr(module).encode()).hexdigest()[:16]


def model_units(model: nn.Module, input_shape: Sequence[int]) -> list[Unit]:
    """The units of ``model`` (see the module docstring), found with one batch-1 forward pass."""
    parts = list(model.latency_units()) if hasattr(model, "latency_units") else list(model.named_children())
    if not parts:
        parts = [("model", model)]
    calls: list[tuple[nn.Module, tuple[Shape, ...]]] = []

    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        if not all(isinstance(a, torch.Tensor) for a in args):
            raise ConfigError(f"latency unit {type(module).__name__} takes non-tensor arguments; "
                              "give the model a latency_units() method")
        calls.append((module, tuple(tuple(a.shape[1:]) for a in args)))

    handles = [m.register_forward_pre_hook(hook) for _, m in parts]
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros((1,) + tuple(int(s) for s in input_shape)))
    finally:
        for h in handles:
            h.remove()
    units = []
    for module, shapes in calls:
        shape_text = ",".join("x".join(str(s) for s in shape) for shape in shapes)
        units.append(Unit(f"{type(module).__name__}|{shape_text}|{_describe(module)}", lambda m=module: m, shapes))
    return units


def measure_unit(unit: Unit, *, batch_size: int = 1, threads: int | None = 1, warmup: int = 3,
                 repeats: int = 10, clock: str = "wall", statistic: str = "median") -> float:
    """Milliseconds of the unit's module alone on random inputs (options as in ``measure_latency``)."""
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn((batch_size,) + shape, generator=gen) for shape in unit.input_shapes]
    module = unit.build()
    with eval_mode(module), torch.inference_mode(), num_threads(threads):
        return time_call(lambda: module(*xs), warmup=warmup, repeats=repeats, clock=clock, statistic=statistic)


class LatencyTable:
    """Milliseconds per unit key; ``predict`` sums the units of a candidate's network.

    Units come from ``unit_fn(candidate)`` when given; else, for a mobile space, from its layer
    strings (:func:`rlnas.costs.mobile.mobile_units`, no network is built); else from the
    network of ``model_fn(candidate)`` or ``rlnas.models.create_model`` (:func:`model_units`).
    ``input_shape=None`` means ``(in_channels, r, r)`` with the candidate's resolution ``r``
    (``model.resolution``, 224 when the model has none).
    """

    def __init__(self, space: Space, entries: Mapping[str, float] | None = None, *,
                 input_shape: Sequence[int] | None = None, model_kwargs: Mapping[str, Any] | None = None,
                 model_fn: Callable[[Candidate], nn.Module] | None = None,
                 unit_fn: Callable[[Candidate], list[Unit]] | None = None, measure_missing: bool = True,
                 **timing: Any):
        """``timing``: ``batch_size``, ``threads``, ``warmup``, ``repeats``, ``clock``, ``statistic``
        of :func:`measure_unit` (defaults 1, 1, 3, 10, ``"wall"``, ``"median"``). ``measure_missing=False``:
        a unit the table lacks is a :class:`ConfigError` instead of being timed on this machine (a search's
        table: the same costs on every machine and every resume)."""
        unknown = set(timing) - set(TIMING_DEFAULTS)
        if unknown:
            raise ConfigError(f"LatencyTable: unknown option(s) {sorted(unknown)}")
        self.space = space
        self.entries: dict[str, float] = dict(entries or {})
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        self.model_kwargs = dict(model_kwargs or {})
        self.timing: dict[str, Any] = {**TIMING_DEFAULTS, **timing}
        self._model_fn = model_fn
        self._unit_fn = unit_fn
        self._keys: dict[Candidate, list[str]] = {}  # predict() finds each candidate's units once
        self.misses = 0
        self.pending: list[Unit] = []
        self.measure_missing = measure_missing
        self.source = "the latency table"
        """How messages name the table (a file's path, ``the shipped latency table``)."""

    # ------------------------------------------------------------------ units
    def model(self, candidate: Mapping[str, Choice]) -> nn.Module:
        """The network of ``candidate`` (``model_fn``, or ``rlnas.models.create_model``)."""
        if self._model_fn is not None:
            return self._model_fn(candidate)
        from rlnas.models import create_model

        return create_model(self.space, candidate, **self.model_kwargs)

    def model_input_shape(self, model: nn.Module) -> tuple[int, ...]:
        """The input shape (batch excluded) the table measures ``model`` at."""
        if self.input_shape is not None:
            return self.input_shape
        r = int(getattr(model, "resolution", 224))
        return (int(self.model_kwargs.get("in_channels", 3)), r, r)

    def units(self, candidate: Mapping[str, Choice]) -> list[Unit]:
        """The units of ``candidate``'s network."""
        if self._unit_fn is not None:
            return self._unit_fn(self.space.candidate(candidate))
        if self._model_fn is None:
            from rlnas.costs.mobile import is_mobile_space, mobile_units

            if is_mobile_space(self.space):
                res = {"resolution": self.input_shape[-1]} if self.input_shape is not None else {}
                return mobile_units(self.space, candidate, **self.model_kwargs, **res)
        model = self.model(candidate)
        return model_units(model, self.model_input_shape(model))

    def add(self, units: Sequence[Unit]) -> int:
        """Measure the units whose key is not in the table yet; return how many were measured."""
        added = 0
        for unit in units:
            if unit.key not in self.entries:
                if not self.measure_missing:
                    raise ConfigError(f"{self.source} has no entry for unit {unit.key!r}: it does not cover the "
                                      f"networks of space {self.space.name!r} (LatencyTable.build measures all "
                                      "of them; latency_table=build does so for a search)")
                self.entries[unit.key] = measure_unit(unit, **self.timing)
                added += 1
        return added

    def predict(self, candidate: Mapping[str, Choice]) -> float:
        """Predicted milliseconds of ``candidate``: the sum of its units' table entries."""
        candidate = self.space.candidate(candidate)
        keys = self._keys.get(candidate)
        if keys is None or any(k not in self.entries for k in keys):
            units = self.units(candidate)
            self.misses += self.add(units)
            keys = [u.key for u in units]
            if len(self._keys) < 100_000:
                self._keys[candidate] = keys
        return float(sum(self.entries[k] for k in keys))

    # ------------------------------------------------------------------ build
    @classmethod
    def build(cls, space: Space, *, max_combos: int | None = 256, seed: int = 0, measure: bool = True,
              **options: Any) -> LatencyTable:
        """Measure every unit configuration ``space`` produces (see the module docstring).

        ``max_combos`` caps the combinations enumerated per unit position (random ones beyond,
        drawn with ``seed``); ``measure=False`` only collects the units (``table.pending``).
        ``options`` go to the constructor.
        """
        table = cls(space, **options)
        found = _covering_units(space, table.units, max_combos, np.random.default_rng(seed))
        table.pending = [u for k, u in found.items() if k not in table.entries]
        if measure:
            table.add(table.pending)
            table.pending = []
        return table

    # ------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """JSON-able table: measurement settings, space name and fingerprint, entries."""
        return {
            "space": self.space.name, "fingerprint": self.space.fingerprint,
            "input_shape": list(self.input_shape) if self.input_shape is not None else None,
            "model_kwargs": self.model_kwargs, "timing": self.timing, "torch": torch.__version__,
            "machine": f"{platform.machine()} {platform.processor()}".strip(),
            "entries": dict(sorted(self.entries.items())),
        }

    def save(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``, whole or not at all (never over a folder, a device or a database)."""
        try:
            write_atomically(path, json.dumps(self.to_json(), indent=1).encode("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot write the latency table to {path}: {exc.strerror}") from None

    @classmethod
    def load(cls, path: str | Path, space: Space | None = None, *,
             model_fn: Callable[[Candidate], nn.Module] | None = None,
             unit_fn: Callable[[Candidate], list[Unit]] | None = None) -> LatencyTable:
        """Read a table written by :meth:`save`; ``space`` defaults to ``create_space(<stored name>)``."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if space is None:
            from rlnas.spaces import create_space

            space = create_space(data["space"])
        if space.fingerprint != data["fingerprint"]:
            raise ConfigError(f"latency table {path} was built for another {data['space']!r} space "
                              f"(fingerprint {data['fingerprint']}, this one {space.fingerprint})")
        return cls(space, data["entries"], input_shape=data["input_shape"], model_kwargs=data["model_kwargs"],
                   model_fn=model_fn, unit_fn=unit_fn, **data["timing"])


def _covering_units(space: Space, units_of: Callable[[Candidate], list[Unit]], max_combos: int | None,
                    rng: np.random.Generator) -> dict[str, Unit]:
    """One unit per key, over candidates that together hold every unit configuration of ``space``.

    1. Base: starting from the first choices, each decision in turn takes the choice giving the
       most units (so optional layers are on and depths are maximal).
    2. One decision at a time is changed from the base; a unit position whose key changes is
       *touched* by that decision (a change in the number of units is kept as is).
    3. For every position, all combinations of the decisions touching it are enumerated (at
       most ``max_combos``, random ones beyond), the other decisions staying at the base.
    """
    found: dict[str, Unit] = {}
    keys_of: dict[tuple[int, ...], list[str]] = {}

    def visit(indices: Sequence[int]) -> list[str]:
        idx = tuple(int(i) for i in indices)
        if idx not in keys_of:
            units = units_of(space.from_indices(idx))
            for unit in units:
                found.setdefault(unit.key, unit)
            keys_of[idx] = [u.key for u in units]
        return keys_of[idx]

    base = [0] * len(space.sizes)
    for d, size in enumerate(space.sizes):
        counts = [len(visit(base[:d] + [c] + base[d + 1 :])) for c in range(size)]
        base[d] = int(np.argmax(counts))
    base_keys = visit(base)
    touching: dict[int, list[int]] = {}
    for d, size in enumerate(space.sizes):
        for c in range(size):
            keys = visit(base[:d] + [c] + base[d + 1 :])
            if len(keys) == len(base_keys):
                for p in (p for p, (k, b) in enumerate(zip(keys, base_keys)) if k != b):
                    if d not in touching.setdefault(p, []):
                        touching[p].append(d)
    for _, decisions in sorted(touching.items()):
        sizes = [space.sizes[d] for d in decisions]
        if max_combos is None or int(np.prod(sizes)) <= max_combos:
            combos: Iterable[tuple[int, ...]] = itertools.product(*(range(s) for s in sizes))
        else:
            combos = [tuple(int(rng.integers(s)) for s in sizes) for _ in range(max_combos)]
        for combo in combos:
            idx = list(base)
            for d, c in zip(decisions, combo):
                idx[d] = c
            visit(idx)
    return found
