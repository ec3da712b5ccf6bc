"""Comparison rows and regret bands over groups of studies, from closed forms."""
from __future__ import annotations

import math

import pytest
from report_fixtures import snapshot, trial

from rlnas.errors import ConfigError
from rlnas.reports.compare import compare_groups, regret_bands, summarize


def _study(name: str, rewards: list[float | None], tests: list[float], keys: list[str]):
    return snapshot(name, [trial(i, r, key=k, metrics={"test_acc": t} if r is not None else {})
                           for i, (r, t, k) in enumerate(zip(rewards, tests, keys))])


def test_summary_counts_queries_to_the_best_and_distinct_architectures() -> None:
    s = summarize(_study("a", [1.0, None, 3.0, 3.0, 2.0], [10, 0, 30, 31, 20], ["x", "y", "z", "z", "x"]))
    assert (s.finished, s.failed, s.best_reward, s.best_key, s.queries_to_best, s.distinct) == (5, 1, 3.0, "z", 3, 3)
    assert s.best_metrics == {"test_acc": 30.0} and s.spent_seconds == 5.0
    empty = summarize(_study("e", [None], [0], ["x"]))
    assert empty.best_reward is None and empty.queries_to_best is None and empty.failed == 1


def test_groups_aggregate_seeds_with_mean_and_sample_std() -> None:
    a1 = _study("a-1", [1.0, 4.0], [10, 40], ["x", "y"])
    a2 = _study("a-2", [2.0, 2.0, 2.0], [20, 20, 20], ["x", "x", "x"])
    b = _study("b", [5.0], [50], ["q"])
    rows = compare_groups({"a-*": [a1, a2], "b": [b]})
    a, single = rows
    assert a.studies == ("a-1", "a-2") and a.label == "a-*"
    assert a.best_reward == (3.0, pytest.approx(math.sqrt(2)))  # (4, 2)
    assert a.best_test == (30.0, pytest.approx(math.sqrt(200)))  # (40, 20)
    assert a.queries_to_best == (1.5, pytest.approx(math.sqrt(0.5)))  # (2, 1)
    assert a.distinct == (1.5, pytest.approx(math.sqrt(0.5)))  # (2, 1)
    assert single.best_reward == (5.0, 0.0) and single.failed == 0
    with pytest.raises(ConfigError, match="empty"):
        compare_groups({"none": []})


def test_regret_bands_against_a_given_or_found_optimum() -> None:
    a1 = _study("a-1", [1.0, 4.0, 3.0], [10, 40, 90], ["x", "y", "z"])
    a2 = _study("a-2", [None, 2.0], [0, 20], ["x", "x"])
    data = regret_bands({"a": [a1, a2]}, optimum=50.0)
    (band,) = data.bands
    # a1: incumbents 10, 40, 40 -> regret 40, 10, 10; a2: (nothing), 20 -> backfilled 30, 30, padded 30
    assert band.mean.tolist() == [35.0, 20.0, 20.0] and band.runs == 2
    assert data.optimum == 50.0 and data.optimum_source == "given"
    found = regret_bands({"a": [a1, a2]})
    assert found.optimum == 40.0 and found.optimum_source == "best found in these studies"
    with pytest.raises(ConfigError, match="no COMPLETE trial"):
        regret_bands({"b": [_study("b", [None], [0], ["x"])]})
