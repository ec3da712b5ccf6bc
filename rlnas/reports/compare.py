"""Comparing studies: one row per study or per group of seeds, and regret bands over groups.

A *group* is the list of studies one pattern matched (``'c10-ppo-*'``: every seed of a
setting); its numbers are means over the studies with the sample standard deviation.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rlnas.errors import ConfigError
from rlnas.reports.regret import Band, incumbent_values, mean_band
from rlnas.reports.snapshot import StudySnapshot
from rlnas.trial import TrialState


@dataclass(frozen=True)
class StudySummary:
    """What one study found and what it cost."""

    name: str
    finished: int
    failed: int
    best_reward: float | None
    best_key: str | None
    best_metrics: dict[str, float]
    queries_to_best: int | None
    """Finished trials (in slot order) until the best reward first appeared."""
    distinct: int
    """Distinct networks among the finished trials (:meth:`~rlnas.spaces.base.Space.identity`)."""
    spent_seconds: float


def summarize(snapshot: StudySnapshot) -> StudySummary:
    """The :class:`StudySummary` of one study."""
    from rlnas.spaces.base import count_networks
    from rlnas.study._factories import registered_space

    history = snapshot.evaluated  # a repeat answered from the store is not a query
    best = snapshot.best
    queries = None if best is None else 1 + [t.number for t in history].index(best.number)
    return StudySummary(
        name=snapshot.name, finished=len(history), failed=sum(t.state is TrialState.FAIL for t in history),
        best_reward=None if best is None else best.reward, best_key=None if best is None else best.key,
        best_metrics={} if best is None else dict(best.metrics), queries_to_best=queries,
        distinct=count_networks(registered_space(snapshot.record), history),
        spent_seconds=float(sum(t.cost_seconds for t in history)),
    )


@dataclass(frozen=True)
class GroupRow:
    """Mean and sample std over the studies of one group (std is 0 for a single study, NaN when nothing is known)."""

    label: str
    studies: tuple[str, ...]
    best_reward: tuple[float, float]
    best_test: tuple[float, float]
    queries_to_best: tuple[float, float]
    distinct: tuple[float, float]
    finished: tuple[float, float]
    failed: tuple[float, float]
    without_result: int = 0
    """Studies of the group with no COMPLETE trial (left out of the reward and metric means)."""


def mean_std(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation of the known values (``(nan, nan)`` when none)."""
    v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def compare_groups(groups: Mapping[str, Sequence[StudySnapshot]], test_metric: str = "test_acc") -> list[GroupRow]:
    """One :class:`GroupRow` per group, in the given order."""
    rows = []
    for label, snapshots in groups.items():
        if not snapshots:
            raise ConfigError(f"study group {label!r} is empty")
        check_one_problem({label: snapshots}, f"study group {label!r} (its means)")
        s = [summarize(x) for x in snapshots]
        rows.append(GroupRow(
            label=label, studies=tuple(x.name for x in s), best_reward=mean_std([x.best_reward for x in s]),
            best_test=mean_std([x.best_metrics.get(test_metric) for x in s]),
            queries_to_best=mean_std([x.queries_to_best for x in s]), distinct=mean_std([x.distinct for x in s]),
            finished=mean_std([x.finished for x in s]), failed=mean_std([x.failed for x in s]),
            without_result=sum(x.best_reward is None for x in s)))
    return rows


def problem_of(snapshot: StudySnapshot) -> tuple[str, str, str]:
    """What a study's numbers are numbers of: its space (by fingerprint), evaluator and data set. Agents,
    seeds, rewards and fidelities may differ between studies compared; these may not."""
    evaluator = snapshot.record.evaluator
    return (snapshot.record.fingerprint, str(evaluator.get("name", "-")), str(evaluator.get("dataset", "-")))


def check_one_problem(groups: Mapping[str, Sequence[StudySnapshot]], what: str) -> None:
    """A :class:`ConfigError` when the studies of ``groups`` searched different spaces, evaluators or data
    sets: a mean, or a regret against one optimum, over them would mean nothing."""
    seen: dict[tuple[str, str, str], str] = {}
    for snapshots in groups.values():
        for snapshot in snapshots:
            seen.setdefault(problem_of(snapshot), snapshot.name)
    if len(seen) > 1:
        shown = "; ".join(f"{name!r}: {_problem_text(problem, groups, name)}" for problem, name in seen.items())
        raise ConfigError(f"{what} would mix studies of different problems ({shown}): compare each problem "
                          "on its own")


def _problem_text(problem: tuple[str, str, str], groups: Mapping[str, Sequence[StudySnapshot]], name: str) -> str:
    space = next(s.record.space_name for g in groups.values() for s in g if s.name == name)
    return f"space {space}, evaluator {problem[1]}" + ("" if problem[2] == "-" else f", data set {problem[2]}")


def check_metric_stored(groups: Mapping[str, Sequence[StudySnapshot]], metric: str) -> None:
    """A :class:`ConfigError` naming the stored metrics when no COMPLETE trial of ``groups`` has ``metric``
    (a typo would otherwise show as ``-`` everywhere)."""
    stored = {m for g in groups.values() for s in g for t in s.completed for m in t.metrics}
    if stored and metric not in stored:
        raise ConfigError(f"no metric {metric!r} in the trials (stored: {', '.join(sorted(stored))})")


def incumbent_curve(snapshot: StudySnapshot, metric: str = "test_acc") -> np.ndarray:
    """``metric`` of the best-by-reward trial after each finished trial (NaN before the first success)."""
    history = snapshot.evaluated
    rewards = [t.reward if t.state is TrialState.COMPLETE else None for t in history]
    values = [t.metrics.get(metric, math.nan) for t in history]
    return incumbent_values(rewards, values)


@dataclass(frozen=True)
class RegretData:
    """Regret bands, one per group, against queries; ``optimum`` and where it came from."""

    bands: tuple[Band, ...]
    optimum: float
    optimum_source: str
    metric: str


MAX_OPTIMUM = 1e15
"""Largest optimum a regret plot takes (1e308 overflowed the axes and drew nothing)."""


def regret_bands(groups: Mapping[str, Sequence[StudySnapshot]], metric: str = "test_acc",
                 optimum: float | None = None, level: float = 0.95, optimum_source: str = "given") -> RegretData:
    """Regret ``optimum − metric of the incumbent`` against queries, mean and ``level`` band per group.

    ``optimum`` is the best ``metric`` known (e.g. of a whole benchmark table); when ``None``,
    the best ``metric`` of any incumbent of these studies stands in for it (then the regret is
    relative to what these searches found, and the best of them ends at 0). ``optimum_source``
    says where a given optimum comes from (shown on the plot). Before a run's first success its first
    incumbent stands in; a run that stopped early keeps its last incumbent (see ``pad_last``).
    """
    check_one_problem(groups, "a regret plot")
    curves: dict[str, list[np.ndarray]] = {}
    for label, snapshots in groups.items():
        runs = [incumbent_curve(s, metric) for s in snapshots]
        runs = [r for r in runs if len(r) and not np.isnan(r).all()]
        if not runs:
            raise ConfigError(f"study group {label!r} has no COMPLETE trial with a {metric!r} metric")
        curves[label] = runs
    source = optimum_source
    found = max(float(np.nanmax(r)) for runs in curves.values() for r in runs)
    if optimum is None:
        optimum, source = found, "best found in these studies"
    elif not math.isfinite(optimum) or optimum < found - 1e-9 * max(1.0, abs(found)) or optimum > MAX_OPTIMUM:
        raise ConfigError(f"the optimum must be a number from the best {metric} these studies found ({found:g}) "
                          f"to {MAX_OPTIMUM:g}, got {optimum!r}")  # (rounding aside); beyond, the axes overflow
    bands = []
    for label, runs in curves.items():
        # NaN before the first success: start each run at its first incumbent
        filled = [np.where(np.isnan(r), r[~np.isnan(r)][0], r) for r in runs]
        bands.append(mean_band(label, [optimum - r for r in filled], level))
    return RegretData(tuple(bands), float(optimum), source, metric)


__all__ = [
    "GroupRow",
    "RegretData",
    "StudySummary",
    "check_metric_stored",
    "check_one_problem",
    "compare_groups",
    "incumbent_curve",
    "mean_std",
    "problem_of",
    "regret_bands",
    "summarize",
]
