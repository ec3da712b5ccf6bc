"""The supernet evaluator: warm-up schedules, training, scoring, resumable state, reward checks, export."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from rlnas.agents.tunas import TunasAgent
from rlnas.errors import ConfigError
from rlnas.evaluators import create_evaluator
from rlnas.evaluators.supernet import SupernetEvaluator, linear_decay
from rlnas.models.supernet import decision_role

torch.set_num_threads(1)
TINY = {"dataset": "digits", "epochs": 1, "batch_size": 32, "valid_batch_size": 64,
        "model_kwargs": {"width_mult": 0.35, "stem_stride": 1, "input_size": 8}}


def tiny(**options) -> SupernetEvaluator:
    return create_evaluator("supernet", **{"space": "proxyless", **TINY, **options})


def weights(evaluator: SupernetEvaluator) -> list[torch.Tensor]:
    return [p.detach().clone() for p in evaluator.supernet.parameters()]


def test_warm_up_probabilities_fall_linearly_and_apply_per_decision() -> None:
    ev = tiny(op_warmup=0.5, filter_warmup=0.25)
    space = ev.space
    total = 400
    ops = [d.name for d in space.decisions if decision_role(d.name) == "op"]
    filters = [d.name for d in space.decisions if decision_role(d.name) == "filters"]
    cand = space.extreme(False)
    path = ev.train_path(cand, 0, total)  # p = q = 1: every op averaged, every filter count largest
    assert path.all_ops == set(ops) and all(path.candidate[f] == max(space.decision(f).choices) for f in filters)
    path = ev.train_path(cand, 200, total)  # both warm-ups over
    assert path.candidate == cand and not path.all_ops
    assert [linear_decay(t, 200) for t in (0, 50, 100, 200, 300)] == [1.0, 0.75, 0.5, 0.0, 0.0]
    averaged = sum(len(ev.train_path(cand, t, total).all_ops) for t in range(200))
    expected = len(ops) * sum(linear_decay(t, 200) for t in range(200))
    assert abs(averaged - expected) < 0.05 * expected  # about p(t) of the op decisions at each step
    widened = sum(sum(ev.train_path(cand, t, total).candidate[f] != cand[f] for f in filters) for t in range(100))
    assert abs(widened - len(filters) * sum(linear_decay(t, 100) for t in range(100))) < 0.1 * len(filters) * 50
    assert ev.train_path(cand, 7, total) == ev.train_path(cand, 7, total)  # seeded by (seed, step)


def test_training_a_path_lowers_its_loss_and_scores_come_with_costs() -> None:
    ev = tiny(op_warmup=0.0, filter_warmup=0.0, lr=0.05, epochs=4)
    cand = ev.space.known()["proxylessnas_mobile"]
    losses = [ev.train_step(cand, step=t, total_steps=ev.total_steps)["loss"] for t in range(ev.total_steps)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    m = ev.evaluate(cand)
    assert 50 < m.metrics["supernet_acc"] <= 100
    assert m.metrics["cost"] == m.metrics["latency_ms"] == ev.cost_model(cand)
    assert ev.default_reward == "supernet_acc"


def test_state_round_trip_continues_bit_identically() -> None:
    rng = np.random.default_rng(0)
    ev = tiny()
    paths = [ev.space.sample(rng) for _ in range(8)]
    total = 8
    for t in range(4):
        ev.train_step(paths[t], step=t, total_steps=total)
        ev.evaluate(paths[t], split="valid_batch")
    buffer = io.BytesIO()
    torch.save(ev.state_dict(), buffer)
    for t in range(4, 8):
        ev.train_step(paths[t], step=t, total_steps=total)
    scores = [ev.evaluate(p, split="valid_batch").metrics["supernet_acc"] for p in paths[:3]]
    buffer.seek(0)
    resumed = create_evaluator(**ev.spec())
    resumed.load_state_dict(torch.load(buffer, weights_only=True))
    for t in range(4, 8):
        resumed.train_step(paths[t], step=t, total_steps=total)
    assert all(torch.equal(a, b) for a, b in zip(weights(ev), weights(resumed)))
    assert [resumed.evaluate(p, split="valid_batch").metrics["supernet_acc"] for p in paths[:3]] == scores


def test_remat_trains_the_same_weights() -> None:
    cand = tiny().space.extreme(True)
    runs = []
    for remat in (False, True):
        ev = tiny(remat=remat)
        for t in range(3):  # op warm-up on: every kernel and skip averaged
            ev.train_step(cand, step=t, total_steps=100)
        runs.append(weights(ev))
    for a, b in zip(*runs):
        torch.testing.assert_close(a, b)


def test_a_tiny_search_is_deterministic() -> None:
    def run() -> tuple:
        ev = tiny(epochs=0.5)
        agent = TunasAgent(ev.space, {"lr": 0.1, "rl_delay": 0.25}, seed=3)
        total = ev.total_steps
        for step in range(total):
            shared, updates = agent.plan_round(step, total, ev.steps_per_epoch)
            for cand in agent.train_children(shared):
                ev.train_step(cand, step=step, total_steps=total)
            for _ in range(updates):
                proposals = agent.ask(agent.batch_size)
                scores = [ev.evaluate(p.candidate, split="valid_batch").metrics["supernet_acc"] for p in proposals]
                agent.tell(list(zip(proposals, scores)))
        return agent.controller.logits.detach().clone(), weights(ev)

    (logits_a, weights_a), (logits_b, weights_b) = run(), run()
    assert torch.equal(logits_a, logits_b) and logits_a.abs().sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(weights_a, weights_b))


def test_reward_checks_give_one_line_errors() -> None:
    ev = tiny()
    low, high = ev.cost_model.range()
    ev.check_reward("abs", beta=-0.07, target=(low + high) / 2)
    with pytest.raises(ConfigError, match=r"target 1000 ms is outside the latency range of space 'proxyless'"):
        ev.check_reward("abs", beta=-0.07, target=1000)
    with pytest.raises(ConfigError, match="outside"):
        ev.check_reward("soft", beta=-0.07, target=low / 2)
    with pytest.raises(ConfigError, match="beta must be negative"):
        ev.check_reward("abs", beta=0.07, target=(low + high) / 2)
    with pytest.raises(ConfigError, match="unknown cost-aware reward 'linear'"):
        ev.check_reward("linear", beta=-0.07, target=(low + high) / 2)
    with pytest.raises(ConfigError, match="no latency table ships"):
        _ = tiny(model_kwargs={"width_mult": 0.5}).cost_model
    with pytest.raises(ConfigError, match="unknown cost 'energy'"):
        tiny(cost="energy")
    with pytest.raises(ConfigError, match="op_warmup must be a fraction"):
        tiny(op_warmup=1.5)
    for option, value, words in (("remat", "no", "true or false"), ("channels_last", "no", "true or false"),
                                 ("latency_table", 5, "a string or null"), ("batch_size", 3.5, "an integer")):
        with pytest.raises(ConfigError, match=f"supernet evaluator option '{option}' must be {words}, got"):
            SupernetEvaluator("proxyless", **{**TINY, option: value})  # as create_evaluator refuses them
    with pytest.raises(ConfigError, match="space 'nb201' is not a mobile space"):
        create_evaluator("supernet", space="nb201", **TINY)


def test_exported_network_keeps_the_inherited_weights() -> None:
    ev = tiny(op_warmup=0.0, filter_warmup=0.0, epochs=2)
    cand = ev.space.known()["proxylessnas_mobile"]
    for t in range(ev.total_steps):
        ev.train_step(cand, step=t, total_steps=ev.total_steps)
    model = ev.export_model(cand)
    assert not model.training
    x = ev.transform(ev.data.valid.batch(torch.arange(64))[0])
    torch.testing.assert_close(model.train()(x), ev.supernet.train()(x, cand))
    inherited = ev.accuracy_of(model, "valid")
    assert abs(inherited - ev.evaluate(cand).metrics["supernet_acc"]) < 10  # running vs batch statistics
    tuned = ev.export_model(cand, finetune_epochs=1)
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), tuned.state_dict().values()))


def test_network_options_are_checked_when_the_evaluator_is_made() -> None:
    with pytest.raises(ConfigError, match="the proxyless model option 'width_mult' must be positive, got -1"):
        SupernetEvaluator("proxyless", "digits", epochs=1, model_kwargs={"width_mult": -1})  # not "no latency table"
    with pytest.raises(ConfigError, match=r"unknown option\(s\) widht_mult"):
        SupernetEvaluator("proxyless", "digits", epochs=1, model_kwargs={"widht_mult": 1.0})


def test_the_python_api_refuses_a_cost_target_no_architecture_can_meet_before_storing() -> None:
    from rlnas import create_study

    evaluator = SupernetEvaluator("proxyless", "digits", epochs=1)
    reward = {"name": "abs", "metric": "supernet_acc", "cost": "latency_ms", "target": 1000.0, "beta": -7.0}
    with pytest.raises(ConfigError, match=r"target 1000.0 ms is outside the latency range of space 'proxyless'"):
        create_study(space="proxyless", agent="tunas", evaluator=evaluator, reward=reward)  # as the CLI refuses it
    study = create_study(space="proxyless", agent="tunas", evaluator=evaluator, reward=reward | {"target": 12.0})
    assert study.spec.reward["target"] == 12.0
