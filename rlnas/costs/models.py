"""The cost of a candidate as a search reward sees it: latency (lookup table), FLOPs or parameters.

A :class:`CostModel` turns a candidate of a mobile space into one number in the unit of its
kind, for the *deployable* network: the candidate's layer strings at the space's own input
resolution (224 px, or OFA's searched resolution) with the search's width multiplier, input
channels and classes, whatever the image size the search trains on.

* ``latency``: milliseconds, the sum of a :class:`~rlnas.costs.table.LatencyTable`'s entries.
  Tables measured on the development machine ship in ``rlnas/data/latency/`` for the settings
  the ``supernet`` evaluator uses by default (see ``LATENCY.md`` there); for other settings
  pass a table file written by ``LatencyTable.save`` or ``"build"`` to measure one now. A
  table that ships or is loaded stays fixed for the whole search, so a resumed search sees the
  very same costs.
* ``flops``: MFLOPs of one image (multiply-add = 2), ``params``: millions of parameters. Both
  are counted per unit (block, head) and summed, which equals the count of the whole network.
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from rlnas.checks import _integer, _number
from rlnas.costs.measure import count_flops, count_params
from rlnas.costs.table import LatencyTable, Unit
from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate, Choice, Space

COST_UNITS: dict[str, tuple[str, str]] = {
    "latency": ("ms", "latency_ms"),
    "flops": ("MFLOPs", "flops_m"),
    "params": ("M params", "params_m"),
}
"""Cost kinds: unit and the name of the metric an evaluator reports it under."""
LATENCY_TIMING: dict[str, Any] = {"threads": 1, "clock": "cpu", "statistic": "min", "warmup": 2, "repeats": 5}
"""How shipped and newly built latency tables time each unit (thread CPU time, best of 5)."""


class CountTable(LatencyTable):
    """A :class:`LatencyTable` whose entries are per-unit MFLOPs or millions of parameters (exact sums)."""

    def __init__(self, space: Space, kind: str, **options: Any):
        super().__init__(space, **options)
        if kind not in ("flops", "params"):
            raise ConfigError(f"CountTable counts 'flops' or 'params', not {kind!r}")
        self.kind = kind

    def add(self, units: Sequence[Unit]) -> int:
        added = 0
        for unit in units:
            if unit.key not in self.entries:
                with torch.device("meta"):  # shapes are enough to count: nothing is allocated or computed
                    module = unit.build()
                if self.kind == "params":
                    count = count_params(module)
                else:
                    count = count_flops(module, unit.input_shapes[0], "meta")
                self.entries[unit.key] = count / 1e6
                added += 1
        return added


def shipped_table_name(space: Space, model_kwargs: Mapping[str, Any]) -> str:
    """File name a shipped latency table for ``space`` and these model settings has."""
    return (f"{space.name}_w{float(model_kwargs.get('width_mult', 1.0)):g}_in{int(model_kwargs.get('in_channels', 3))}"
            f"_k{int(model_kwargs.get('num_classes', 1000))}.json.gz")


def shipped_latency_table(space: Space, model_kwargs: Mapping[str, Any]) -> LatencyTable | None:
    """The latency table shipped for ``space`` at these settings, or ``None`` when none ships."""
    path = resources.files("rlnas.data").joinpath("latency", shipped_table_name(space, model_kwargs))
    if not path.is_file():
        return None
    data = json.loads(gzip.decompress(path.read_bytes()))
    if data["fingerprint"] != space.fingerprint:
        return None
    table = LatencyTable(space, data["entries"], model_kwargs=data["model_kwargs"], measure_missing=False,
                         **data["timing"])
    table.source = f"the shipped latency table {shipped_table_name(space, model_kwargs)}"
    return table


def load_latency_table(path: str | Path, space: Space) -> LatencyTable:
    """A table written by ``LatencyTable.save`` (plain or ``.gz`` JSON); :class:`ConfigError` when unusable."""
    if not str(path):
        raise ConfigError("latency table: the path is empty (give the file LatencyTable.save wrote)")
    path = Path(path)
    where = f"latency table {str(path)!r}"
    if path.is_dir():
        raise ConfigError(f"{where} is a folder, not a file")
    if not path.is_file():
        raise ConfigError(f"{where} does not exist")
    raw = path.read_bytes()
    try:
        data = json.loads(gzip.decompress(raw) if path.suffix == ".gz" else raw)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where} is not a saved LatencyTable: {exc}") from None
    _check_table_json(data, where)
    if data["space"] != space.name:
        raise ConfigError(f"{where} was built for space {data['space']!r}, not {space.name!r}")
    if data["fingerprint"] != space.fingerprint:
        raise ConfigError(f"{where} was built for another version of space {space.name!r} (fingerprint "
                          f"{data['fingerprint']!r}, this one {space.fingerprint!r})")
    table = LatencyTable(space, data["entries"], model_kwargs=data["model_kwargs"], measure_missing=False,
                         **data["timing"])
    table.source = where
    return table


def _check_table_json(data: Any, where: str) -> None:
    """A :class:`ConfigError` unless ``data`` has the layout of ``LatencyTable.to_json`` with entries that are
    milliseconds (finite, at least 0)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} is not a saved LatencyTable: a JSON {type(data).__name__}, not an object")
    layout = {"space": str, "fingerprint": str, "entries": dict, "timing": dict, "model_kwargs": dict}
    wrong = [key for key, kind in layout.items() if not isinstance(data.get(key), kind)]
    if wrong:
        raise ConfigError(f"{where} is not a saved LatencyTable: {', '.join(wrong)} missing or of the wrong type")
    for key, value in data["entries"].items():
        ok, number = _number(value)
        if not ok or number < 0:
            raise ConfigError(f"{where}: entry {key!r} is {value!r}, not milliseconds (a finite number >= 0)")


@dataclass
class CostModel:
    """The cost of candidates of one space in one unit (see the module docstring)."""

    kind: str
    """``latency``, ``flops`` or ``params``."""
    table: LatencyTable
    """Per-unit entries summed by ``table.predict``."""
    source: str
    """Where the entries come from: ``shipped``, a file path, ``built`` or ``counted``."""

    @property
    def unit(self) -> str:
        """``ms``, ``MFLOPs`` or ``M params``."""
        return COST_UNITS[self.kind][0]

    @property
    def metric(self) -> str:
        """Metric name the cost is also reported under (``latency_ms``, ``flops_m``, ``params_m``)."""
        return COST_UNITS[self.kind][1]

    def __call__(self, candidate: Mapping[str, Choice]) -> float:
        """Cost of ``candidate``'s deployable network."""
        return self.table.predict(candidate)

    def range(self) -> tuple[float, float]:
        """The lowest and highest cost found by :meth:`extreme_cost` from the smallest and largest candidates."""
        space = self.table.space
        return (self.extreme_cost(space.extreme(False), lowest=True),  # type: ignore[attr-defined]
                self.extreme_cost(space.extreme(True), lowest=False))  # type: ignore[attr-defined]

    def extreme_cost(self, start: Candidate, *, lowest: bool) -> float:
        """Coordinate search from ``start``: change one decision at a time while that lowers (raises) the cost.

        A measured table is not monotone in every choice (a 5x5 depthwise conv may time faster
        than a 3x3 one), so the extreme candidates need not be the extreme costs; the costs are
        sums over blocks, so one-decision moves reach the extremes or come very close.
        """
        space = self.table.space
        sign = 1.0 if lowest else -1.0
        current, best = dict(start), self(start)
        improved = True
        while improved:
            improved = False
            for d in space.decisions:
                for choice in d.choices:
                    trial = {**current, d.name: choice}
                    value = self(trial)
                    if sign * value < sign * best - 1e-12:
                        current, best, improved = trial, value, True
        return best

    def extra_entries(self) -> dict[str, float]:
        """Entries that must travel with a checkpoint (a table measured during this run), else ``{}``."""
        return dict(self.table.entries) if self.source == "built" else {}


def create_cost_model(space: Space, kind: str = "latency", *, model_kwargs: Mapping[str, Any],
                      latency_table: str | None = None, entries: Mapping[str, float] | None = None) -> CostModel:
    """The cost model ``kind`` of ``space``'s deployable networks built with ``model_kwargs``.

    ``latency_table``: ``None`` (the shipped table), ``"build"`` (measure every unit now) or a
    path. ``entries`` restores a table measured by an earlier run of the same search.
    Raises :class:`ConfigError` for an unknown kind, a space that is not a mobile space, or a
    latency setting no table ships for.
    """
    if kind not in COST_UNITS:
        raise ConfigError(f"unknown cost {kind!r} (choices: {', '.join(COST_UNITS)})")
    if not isinstance(space, Space):
        raise ConfigError(f"create_cost_model needs a Space (e.g. create_space('proxyless')), got "
                          f"{type(space).__name__} {space!r}")
    if not callable(getattr(space, "arch", None)):
        raise ConfigError(f"space {space.name!r} has no cost data (cost models cover the mobile spaces)")
    if not isinstance(model_kwargs, Mapping):
        raise ConfigError(f"model_kwargs must be a mapping, got {type(model_kwargs).__name__}")
    kwargs = {k: model_kwargs[k] for k in ("width_mult", "in_channels", "num_classes") if k in model_kwargs}
    _check_model_kwargs(kwargs)
    if kind != "latency":
        return CostModel(kind, CountTable(space, kind, model_kwargs=kwargs), "counted")
    if entries:
        return CostModel(kind, LatencyTable(space, entries, model_kwargs=kwargs, **LATENCY_TIMING), "built")
    if latency_table == "build":
        table = LatencyTable.build(space, max_combos=None, model_kwargs=kwargs, **LATENCY_TIMING)
        return CostModel(kind, table, "built")
    if latency_table is not None:
        return CostModel(kind, load_latency_table(latency_table, space), str(latency_table))
    table = shipped_latency_table(space, kwargs)
    if table is None:
        raise ConfigError(
            f"no latency table ships for space {space.name!r} with {kwargs} "
            f"(looked for {shipped_table_name(space, kwargs)}); pass latency_table='build' to measure one "
            "on this machine, a saved table's path, or use --cost flops / params")
    return CostModel(kind, table, "shipped")


def _check_model_kwargs(kwargs: Mapping[str, Any]) -> None:
    """``width_mult`` a positive number, ``in_channels`` and ``num_classes`` positive whole numbers (NumPy
    numbers too, as the evaluators' own option checks take them)."""
    for key, value in kwargs.items():
        whole = key != "width_mult"
        ok, number = (_integer if whole else _number)(value)
        if not ok or not number > 0:
            raise ConfigError(f"model_kwargs {key} must be a positive {'whole ' if whole else ''}number, "
                              f"got {value!r}")


def candidate_cost(model: CostModel, candidate: Candidate) -> dict[str, float]:
    """``{"cost": c, <unit metric>: c}`` for a measurement's metrics."""
    value = model(candidate)
    return {"cost": value, model.metric: value}
