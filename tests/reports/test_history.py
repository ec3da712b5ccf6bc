"""Search history, diagnostics and accuracy-against-cost data from closed forms."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from report_fixtures import snapshot, trial

from rlnas.errors import ConfigError
from rlnas.reports.history import (
    accuracy_vs_cost,
    diagnostic_series,
    pareto_front,
    search_history,
)
from rlnas.trial import TrialState


def _history_trials():
    # slots out of number order, one failure, one orphan (left out of the history)
    return [trial(0, 5.0, slot=1, cost=10.0, start=0, end=4), trial(1, 3.0, slot=0, cost=2.0, start=0, end=2),
            trial(2, None, slot=2, cost=1.0, start=4, end=5), trial(3, None, slot=3, orphaned=True),
            trial(4, 7.0, slot=3, cost=4.0, start=5, end=9)]


def test_history_is_in_slot_order_with_nan_for_failures_and_a_running_best() -> None:
    h = search_history(snapshot("s", _history_trials()).history)
    assert h.x.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert h.reward[[0, 1, 3]].tolist() == [3.0, 5.0, 7.0] and math.isnan(h.reward[2])
    assert h.best.tolist() == [3.0, 5.0, 5.0, 7.0]
    assert h.failed == 1 and h.xlabel == "trials"


def test_history_against_simulated_and_wall_time() -> None:
    history = snapshot("s", _history_trials()).history
    assert search_history(history, "time").x.tolist() == [2.0, 12.0, 13.0, 17.0]
    assert search_history(history, "wall").x.tolist() == [2.0, 4.0, 5.0, 9.0]
    with pytest.raises(ConfigError, match="unknown history axis 'steps'"):
        search_history(history, "steps")
    untimed = [replace(t, cost_seconds=0.0) for t in history]  # a table without training times (NAS-Bench-Graph)
    with pytest.raises(ConfigError, match="the trials report no evaluation time"):
        search_history(untimed, "time")


def test_history_before_the_first_success_has_no_best() -> None:
    h = search_history([trial(0, None), trial(1, 2.0)])
    assert math.isnan(h.best[0]) and h.best[1] == 2.0


def test_diagnostic_series_keeps_each_name_where_it_was_reported() -> None:
    diags = [(10, {"loss": 1.0, "entropy": 2.0, "p/a/0": 0.5}), (20, {"loss": 0.5}),
             (30, {"loss": 0.25, "entropy": 1.5})]
    series = diagnostic_series(diags)
    assert list(series) == ["loss", "entropy"]
    assert series["loss"][0].tolist() == [10, 20, 30] and series["loss"][1].tolist() == [1.0, 0.5, 0.25]
    assert series["entropy"][0].tolist() == [10, 30] and series["entropy"][1].tolist() == [2.0, 1.5]
    assert list(diagnostic_series(diags, ["entropy"])) == ["entropy"]
    with pytest.raises(ConfigError, match="no diagnostic named 'kl'.*loss, entropy"):
        diagnostic_series(diags, ["kl"])


def test_pareto_front_keeps_exactly_the_non_dominated_points() -> None:
    cost = [1.0, 2.0, 2.0, 3.0, 0.5, 4.0, 3.0]
    acc = [50.0, 60.0, 55.0, 60.0, 40.0, 70.0, 65.0]
    # 0.5/40, 1/50, 2/60, 3/65, 4/70 are on the front; 2/55 and 3/60 are dominated
    assert pareto_front(cost, acc).tolist() == [4, 0, 1, 6, 5]
    assert pareto_front([1.0, 1.0], [5.0, 5.0]).tolist() == [0]
    assert pareto_front([], []).tolist() == []


def test_pareto_front_brute_force_on_random_points() -> None:
    rng = np.random.default_rng(0)
    cost, acc = rng.integers(0, 8, 60).astype(float), rng.integers(0, 8, 60).astype(float)
    front = set(pareto_front(cost, acc).tolist())
    for i in range(60):
        dominated = any(cost[j] <= cost[i] and acc[j] >= acc[i] and (cost[j] < cost[i] or acc[j] > acc[i])
                        for j in range(60))
        duplicate_before = any(cost[j] == cost[i] and acc[j] == acc[i] for j in range(i))
        assert (i in front) == (not dominated and not duplicate_before)


def test_accuracy_vs_cost_takes_each_architecture_once_and_finds_a_cost() -> None:
    trials = [trial(0, 1.0, key="a", metrics={"test_acc": 90.0, "params_m": 2.0, "flops_m": 30.0}),
              trial(1, 1.0, key="a", metrics={"test_acc": 90.0, "params_m": 2.0, "flops_m": 30.0}),
              trial(2, 2.0, key="b", metrics={"test_acc": 80.0, "params_m": 1.0, "flops_m": 10.0}),
              trial(3, None, key="c", metrics={"test_acc": 99.0, "params_m": 0.1}, state=TrialState.FAIL)]
    data = accuracy_vs_cost(trials)
    assert data.cost_name == "flops_m" and data.keys == ("a", "b")
    assert data.cost.tolist() == [30.0, 10.0] and data.accuracy.tolist() == [90.0, 80.0]
    assert data.front.tolist() == [1, 0]
    assert accuracy_vs_cost(trials, cost="params_m").cost.tolist() == [2.0, 1.0]
    with pytest.raises(ConfigError, match="no metric 'latency_ms'"):
        accuracy_vs_cost(trials, cost="latency_ms")
    with pytest.raises(ConfigError, match="no cost metric"):
        accuracy_vs_cost([trial(0, 1.0, metrics={"test_acc": 1.0})])


def test_accuracy_vs_cost_takes_equivalent_cells_once_with_their_space() -> None:
    from dataclasses import replace

    from rlnas.spaces.nbgraph import NBGraphSpace

    space = NBGraphSpace()
    cells = [{"link": "0000", "op1": "fc", "op2": "gcn", "op3": "gat", "op4": "sage"},
             {"link": "0000", "op1": "gat", "op2": "gcn", "op3": "sage", "op4": "fc"}]  # one network
    trials = [replace(trial(i, 1.0, key=space.key(c), metrics={"test_acc": 90.0, "params_m": 2.0}), candidate=c)
              for i, c in enumerate(cells)]
    assert len(accuracy_vs_cost(trials).keys) == 2
    assert accuracy_vs_cost(trials, space=space).keys == (space.key(cells[0]),)
