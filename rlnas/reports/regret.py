"""Regret curves as pure NumPy functions (drawn by :func:`rlnas.reports.render.plot_bands`).

Definitions (the usual ones for tabular NAS benchmarks, e.g. NAS-Bench-101/201 papers):

- the *incumbent* after ``q`` queries is the cell with the highest search reward (validation
  accuracy) among the first ``q`` evaluated cells; ties go to the earliest;
- its *test regret* is ``optimum - test accuracy of the incumbent``, where ``optimum`` is the
  best test accuracy of the whole table. It never goes below zero; it stays above zero
  wherever the best-by-validation cell is not the best-by-test cell.

Confidence bands are the normal approximation ``mean ± z · std / sqrt(n)`` over runs
(``z = 1.96`` for 95%), i.e. bands on the *mean* regret, not on single runs.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def incumbent_values(rewards: Sequence[float | None], values: Sequence[float]) -> np.ndarray:
    """``values`` of the best-by-``rewards`` item among the first ``q`` items, for ``q = 1..n``.

    Missing rewards (``None`` or NaN, failed trials) never become the incumbent; entries
    before the first valid reward are NaN.
    """
    if len(rewards) != len(values):
        raise ValueError(f"rewards and values differ in length ({len(rewards)} vs {len(values)})")
    out = np.full(len(values), np.nan)
    best_reward, best_value = -math.inf, math.nan
    for q, (reward, value) in enumerate(zip(rewards, values)):
        if reward is not None and not math.isnan(reward) and reward > best_reward:
            best_reward, best_value = float(reward), float(value)
        out[q] = best_value
    return out


def regret_curve(rewards: Sequence[float | None], test_values: Sequence[float], optimum: float) -> np.ndarray:
    """Test regret ``optimum - test value of the incumbent`` after each query."""
    return float(optimum) - incumbent_values(rewards, test_values)


def pad_last(curves: Sequence[Sequence[float]], length: int | None = None) -> np.ndarray:
    """Stack curves of unequal length into ``(runs, length)``, repeating each curve's last value.

    A run that stopped early (e.g. a spent time budget) keeps its final incumbent.
    """
    length = max(len(c) for c in curves) if length is None else length
    out = np.empty((len(curves), length))
    for i, c in enumerate(curves):
        c = np.asarray(c, dtype=float)[:length]
        if len(c) == 0:
            raise ValueError("cannot pad an empty curve")
        out[i, : len(c)] = c
        out[i, len(c):] = c[-1]
    return out


@dataclass(frozen=True)
class Band:
    """Mean of several curves with a two-sided confidence band, point by point."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    runs: int


def mean_band(label: str, curves: Sequence[Sequence[float]], level: float = 0.95,
              x: Sequence[float] | None = None) -> Band:
    """Mean curve and its ``level`` normal-approximation confidence band (see the module docstring).

    ``curves`` are padded with :func:`pad_last`; ``x`` defaults to ``1..length`` (queries).
    With a single run the band collapses onto the mean.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    data = pad_last(curves)
    mean = data.mean(axis=0)
    if len(data) > 1:
        half = NormalDist().inv_cdf(0.5 + level / 2) * data.std(axis=0, ddof=1) / math.sqrt(len(data))
    else:
        half = np.zeros_like(mean)
    xs = np.arange(1, data.shape[1] + 1, dtype=float) if x is None else np.asarray(x, dtype=float)
    return Band(label, xs, mean, mean - half, mean + half, len(data))


__all__ = ["Band", "incumbent_values", "mean_band", "pad_last", "regret_curve"]
