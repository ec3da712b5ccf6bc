"""Decision-probability heat maps: replayed controllers match the live agent exactly."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from report_fixtures import snapshot, trial

from rlnas import create_study
from rlnas.errors import ConfigError
from rlnas.reports.policy import (
    choice_heatmap,
    heatmap_by_decision,
    logged_heatmap,
    policy_heatmap,
    row_labels,
)
from rlnas.reports.snapshot import take_snapshot
from rlnas.testing.toy import ToyEvaluator


def _search(agent: str, config: dict, trials: int = 40):
    evaluator = ToyEvaluator(decisions=3, choices=4)
    study = create_study(space=evaluator.space, agent=agent, agent_config=config, evaluator=evaluator, seed=3)
    study.optimize(trials)
    return study, evaluator.space


@pytest.mark.parametrize("agent,config", [("reinforce", {"batch_size": 2}), ("ppo", {"batch_size": 5})])
def test_replayed_factorized_probabilities_start_uniform_and_end_at_the_live_controller(agent, config) -> None:
    study, space = _search(agent, config)
    heat = policy_heatmap(take_snapshot(study.store, study.name), space)
    assert heat.rows[:4] == ("d0=0", "d0=1", "d0=2", "d0=3")
    assert heat.values.shape == (12, 40 // config["batch_size"] + 1)
    assert heat.x[0] == 0 and heat.x[-1] == 40 and heat.source == "replayed (exact)"
    assert np.array_equal(heat.values[:, 0], np.full(12, 0.25))
    live = study.agent.controller.log_probs().exp().detach().double().numpy()
    assert np.allclose(heat.values[:, -1], live[:, :4].reshape(-1), rtol=0, atol=1e-12)
    for block in heatmap_by_decision(heat, space).values():
        assert np.allclose(block.sum(axis=0), 1.0)
    assert not np.allclose(heat.values[:, -1], 0.25)  # it learned something


def test_lstm_marginals_are_estimated_and_sum_to_one() -> None:
    study, space = _search("reinforce", {"controller": "lstm", "batch_size": 4}, trials=12)
    heat = policy_heatmap(take_snapshot(study.store, study.name), space)
    assert heat.source.startswith("replayed (LSTM marginals") and heat.values.shape == (12, 4)
    assert np.allclose(heat.values.reshape(3, 4, -1).sum(axis=1), 1.0)


def test_agents_without_a_controller_are_refused_and_transferred_studies_too() -> None:
    study, space = _search("random", {}, trials=5)
    with pytest.raises(ConfigError, match="no controller.*--kind choices"):
        policy_heatmap(take_snapshot(study.store, study.name), space)
    moved = snapshot("t", [], agent="reinforce", settings={"init_from": "other"})
    with pytest.raises(ConfigError, match="started from study 'other'"):
        policy_heatmap(moved, space)


def test_logged_probabilities_are_used_as_they_are() -> None:
    _, space = _search("random", {}, trials=1)
    logged = snapshot("w", [], diagnostics=[(5, {"loss": 1.0}), (10, {"p/d1/2": 0.75, "p/d0/0": 0.5})])
    heat = logged_heatmap(logged, space)
    assert heat is not None and heat.x.tolist() == [10.0] and heat.source == "logged by the agent"
    assert heat.values[row_labels(space).index("d1=2"), 0] == 0.75 and heat.values[0, 0] == 0.5
    assert np.isnan(heat.values[1, 0])
    assert logged_heatmap(snapshot("none", []), space) is None
    bad = snapshot("bad", [], diagnostics=[(1, {"p/d9/0": 1.0})])
    with pytest.raises(ConfigError, match="p/d9/0 names no choice"):
        logged_heatmap(bad, space)


def test_choice_frequencies_per_window() -> None:
    _, space = _search("random", {}, trials=1)
    picks = [(0, 0, 0), (0, 1, 0), (1, 1, 0), (3, 3, 3), (3, 3, 2)]
    trials = [trial(i, 1.0) for i in range(5)]
    trials = [replace(t, candidate=space.from_indices(p).to_dict()) for t, p in zip(trials, picks)]
    heat = choice_heatmap(snapshot("c", trials), space, window=2)
    assert heat.x.tolist() == [2.0, 4.0, 5.0]
    assert heat.edges.tolist() == [0.0, 2.0, 4.0, 5.0]  # a column spans its window (trials 1-2, 3-4, 5)
    d0 = heatmap_by_decision(heat, space)["d0"]
    assert d0[:, 0].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert d0[:, 1].tolist() == [0.0, 0.5, 0.0, 0.5]
    assert d0[:, 2].tolist() == [0.0, 0.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="window must be >= 1"):
        choice_heatmap(snapshot("c", trials), space, window=0)
