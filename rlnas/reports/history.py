"""Plot data of one search: reward history, agent diagnostics, accuracy against a cost.

Pure functions of trials and diagnostics (NumPy out); :mod:`rlnas.reports.render` draws them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rlnas.errors import ConfigError
from rlnas.spaces.base import Space, network_of
from rlnas.trial import Trial, TrialState

HISTORY_AXES = {
    "trials": "trials",
    "time": "evaluation seconds (simulated for tables)",
    "wall": "wall-clock seconds since the first trial started",
}
"""x axes of :func:`search_history` and their labels."""

COST_METRICS = ("latency_ms", "flops_m", "params_m")
"""Costs looked for (in this order) when :func:`accuracy_vs_cost` is given none."""


@dataclass(frozen=True)
class History:
    """Reward per finished trial and the best reward so far, against ``x``."""

    x: np.ndarray
    reward: np.ndarray
    best: np.ndarray
    xlabel: str
    failed: int


def search_history(trials: Sequence[Trial], x: str = "trials") -> History:
    """Reward of each finished trial (NaN when it failed) and the running best, in the given order.

    ``x``: ``"trials"`` (1, 2, ...), ``"time"`` (cumulative ``cost_seconds``: simulated seconds
    for tabular evaluators, evaluation seconds otherwise) or ``"wall"`` (seconds from the
    first trial's start to each trial's end). Pass :attr:`StudySnapshot.history`.
    """
    if x not in HISTORY_AXES:
        raise ConfigError(f"unknown history axis {x!r} (choices: {', '.join(HISTORY_AXES)})")
    reward = np.array([t.reward if t.state is TrialState.COMPLETE and t.reward is not None else math.nan
                       for t in trials], dtype=float)
    best = np.fmax.accumulate(reward) if len(reward) else reward
    if x == "trials":
        xs = np.arange(1, len(trials) + 1, dtype=float)
    elif x == "time":
        xs = np.cumsum([float(t.cost_seconds) for t in trials])
        if len(xs) and xs[-1] == 0:
            raise ConfigError("the trials report no evaluation time (a table without training times, such as "
                              "NAS-Bench-Graph): draw against trials")
    elif not trials:
        xs = np.zeros(0)
    else:
        starts = [t.started_at for t in trials if t.started_at is not None]
        if len(starts) < len(trials) or any(t.finished_at is None for t in trials):
            raise ConfigError("wall-clock history needs start and finish times of every trial")
        origin = min(starts)
        xs = np.array([(t.finished_at - origin).total_seconds() for t in trials], dtype=float)  # type: ignore[operator]
    return History(np.asarray(xs, dtype=float), reward, best, HISTORY_AXES[x], int(np.isnan(reward).sum()))


def diagnostic_series(diagnostics: Sequence[tuple[int, Mapping[str, float]]],
                      names: Sequence[str] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``name -> (told proposals, value)`` for every diagnostic an agent reported from ``tell``.

    ``names`` keeps only those (in that order; an unknown name is a :class:`ConfigError`);
    by default every name in first-seen order, except the per-choice probabilities
    ``p/<decision>/<choice>`` (drawn as a heat map instead). An update that did not report a
    name leaves it out of that name's series.
    """
    seen: dict[str, None] = {}
    for _, values in diagnostics:
        for name in values:
            if not name.startswith("p/"):
                seen.setdefault(name)
    wanted = list(seen) if names is None else list(names)
    unknown = [n for n in wanted if n not in seen]
    if unknown:
        raise ConfigError(f"no diagnostic named {unknown[0]!r} (stored: {', '.join(seen) or 'none'})")
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in wanted:
        points = [(slot, float(v[name])) for slot, v in diagnostics if name in v and v[name] is not None]
        out[name] = (np.array([p[0] for p in points], dtype=float), np.array([p[1] for p in points], dtype=float))
    return out


@dataclass(frozen=True)
class CostAccuracy:
    """One point per COMPLETE trial (distinct architectures once) and the Pareto front among them."""

    cost: np.ndarray
    accuracy: np.ndarray
    keys: tuple[str, ...]
    front: np.ndarray
    """Indices of the non-dominated points, by increasing cost."""
    cost_name: str
    accuracy_name: str


def pareto_front(cost: Sequence[float], accuracy: Sequence[float]) -> np.ndarray:
    """Indices of the points no other point beats (lower or equal cost and higher or equal
    accuracy, one of them strictly), by increasing cost; of equal points the first is kept."""
    c, a = np.asarray(cost, dtype=float), np.asarray(accuracy, dtype=float)
    if c.shape != a.shape:
        raise ValueError(f"cost and accuracy differ in length ({len(c)} vs {len(a)})")
    order = sorted(range(len(c)), key=lambda i: (c[i], -a[i], i))
    front, best = [], -math.inf
    for i in order:
        if a[i] > best:
            front.append(i)
            best = a[i]
    return np.array(front, dtype=int)


def accuracy_vs_cost(trials: Sequence[Trial], accuracy: str = "test_acc", cost: str | None = None, *,
                     space: Space | None = None) -> CostAccuracy:
    """Accuracy against a cost metric over the COMPLETE trials (each architecture once; with ``space``,
    each network once: :meth:`~rlnas.spaces.base.Space.identity`).

    ``cost`` defaults to the first of :data:`COST_METRICS` that the trials report.
    """
    done = [t for t in trials if t.state is TrialState.COMPLETE]
    if not done:
        raise ConfigError("no COMPLETE trial to plot")
    available = {m for t in done for m in t.metrics}
    if cost is None:
        cost = next((m for m in COST_METRICS if m in available), None)
        if cost is None:
            raise ConfigError(f"the trials report no cost metric ({', '.join(COST_METRICS)}); "
                              f"stored metrics: {', '.join(sorted(available))}")
    for name in (accuracy, cost):
        if name not in available:
            raise ConfigError(f"no metric {name!r} in the trials (stored: {', '.join(sorted(available))})")
    seen: dict[str, Trial] = {}
    network = network_of(space)
    for t in done:
        if accuracy in t.metrics and cost in t.metrics:
            seen.setdefault(network(t), t)
    kept = list(seen.values())
    keys = tuple(t.key for t in kept)
    costs = np.array([t.metrics[cost] for t in kept], dtype=float)
    accs = np.array([t.metrics[accuracy] for t in kept], dtype=float)
    return CostAccuracy(costs, accs, keys, pareto_front(costs, accs), cost, accuracy)


__all__ = [
    "COST_METRICS",
    "HISTORY_AXES",
    "CostAccuracy",
    "History",
    "accuracy_vs_cost",
    "diagnostic_series",
    "pareto_front",
    "search_history",
]
