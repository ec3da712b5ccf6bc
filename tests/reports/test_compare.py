"""Comparison rows and regret bands over groups of studies, from closed forms."""
from __future__ import annotations

import math

import pytest
from report_fixtures import snapshot, trial

from rlnas.errors import ConfigError
from rlnas.reports.compare import check_metric_stored, compare_groups, regret_bands, summarize


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
    assert single.best_reward == (5.0, 0.0) and single.failed == (0.0, 0.0)
    assert a.failed == (0.0, 0.0) and compare_groups({"a": [a1, _study("f", [None, None], [0, 0], ["x", "y"])]})[
        0].failed == (1.0, pytest.approx(math.sqrt(2)))  # a mean, as the table's title says, not a total
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


def test_repeats_answered_from_the_store_are_not_queries() -> None:
    from dataclasses import replace

    trials = [trial(0, 1.0, key="x", metrics={"test_acc": 10}), trial(1, 2.0, key="y", metrics={"test_acc": 20})]
    trials += [replace(trial(n, 2.0, key="y", metrics={"test_acc": 20}), repeat_of=1) for n in range(2, 40)]
    trials.append(trial(40, 3.0, key="z", metrics={"test_acc": 30}))
    s = summarize(snapshot("r", trials))
    assert (s.finished, s.queries_to_best, s.distinct) == (3, 3, 3)  # as rlnas ls counts: 38 free answers left out
    (band,) = regret_bands({"r": [snapshot("r", trials)]}, optimum=30.0).bands
    assert band.mean.tolist() == [20.0, 10.0, 0.0]


def test_studies_of_different_problems_are_not_averaged_or_given_one_optimum() -> None:
    c10 = _study("c10", [1.0, 2.0], [90, 91], ["x", "y"])
    c100 = snapshot("c100", [trial(0, 1.0, metrics={"test_acc": 70})], evaluator={"name": "toy", "dataset": "other"})
    other_space = snapshot("s", [trial(0, 1.0, metrics={"test_acc": 70})], fingerprint="g")
    assert len(compare_groups({"c10": [c10], "c100": [c100]})) == 2  # side by side: fine
    with pytest.raises(ConfigError, match=r"study group '\*' \(its means\) would mix studies of different problems "
                                          r"\('c10': space toy, evaluator toy; 'c100': space toy, evaluator toy, "
                                          r"data set other\)"):
        compare_groups({"*": [c10, c100]})
    for groups in ({"a": [c10], "b": [c100]}, {"a": [c10], "b": [other_space]}):
        with pytest.raises(ConfigError, match="a regret plot would mix studies of different problems"):
            regret_bands(groups)
    seeds = snapshot("c10-1", [trial(0, 5.0, metrics={"test_acc": 92})], agent="ppo", reward="test_acc")
    assert regret_bands({"a": [c10], "b": [seeds]}).optimum == 92.0  # other agents and rewards: one problem


def test_a_given_optimum_is_checked_and_a_missing_metric_is_named() -> None:
    a = _study("a", [1.0, 2.0], [90, 91], ["x", "y"])
    for bad in (math.nan, math.inf, 50.0, 1e308):  # 1e308: the axes overflowed and the plot came out empty
        with pytest.raises(ConfigError, match=r"the optimum must be a number from the best test_acc these studies "
                                              r"found \(91\) to 1e\+15"):
            regret_bands({"a": [a]}, optimum=bad)
    with pytest.raises(ConfigError, match=r"no metric 'tset_acc' in the trials \(stored: test_acc\)"):
        check_metric_stored({"a": [a]}, "tset_acc")
    row, = compare_groups({"a": [a, _study("b", [None], [0], ["x"])]})
    assert row.without_result == 1 and row.best_reward == (2.0, 0.0)
