"""TuNAS controller: closed forms (entropy, first update, lr schedule, rounds), learning on toy problems."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlnas.agents import create_agent
from rlnas.agents.base import Proposal
from rlnas.agents.tunas import TunasAgent
from rlnas.errors import ConfigError
from rlnas.spaces import create_space
from rlnas.testing import ToyEvaluator
from rlnas.testing.agent_contract import check_agent_contract

torch.set_num_threads(1)


def search(agent: TunasAgent, reward, total_steps: int) -> list[dict[str, float]]:
    """The rounds a weight-sharing driver runs, without a supernet: only the controller updates matter."""
    told = []
    for step in range(total_steps):
        shared, updates = agent.plan_round(step, total_steps, steps_per_epoch=10)
        agent.train_children(shared)
        for _ in range(updates):
            proposals = agent.ask(agent.batch_size)
            told.append(agent.tell([(p, reward(p.candidate)) for p in proposals]))
    return told


def test_contract_on_a_toy_space_and_from_the_registry() -> None:
    evaluator = ToyEvaluator(4, 5)
    check_agent_contract(lambda space, seed: create_agent("tunas", space, {"batch_size": 2}, seed=seed),
                         evaluator.space, evaluator.reward_of, batches=6)


@pytest.mark.parametrize("name", ["proxyless", "tunas_mbv3", "ofa_mbv3"])
def test_initial_entropy_is_the_sum_of_log_cardinalities(name: str) -> None:
    space = create_space(name)
    agent = TunasAgent(space, seed=0)
    expected = sum(math.log(k) for k in space.sizes)
    assert agent.entropy() == pytest.approx(expected, rel=1e-6)
    proposal = agent.ask(1)[0]
    assert proposal.info["log_prob"] == pytest.approx(-expected, rel=1e-6)  # uniform: log p = -log |space|
    assert agent.tell([(proposal, 0.5)])["entropy"] == pytest.approx(expected, rel=1e-6)


def test_first_update_has_zero_advantage_then_adam_moves_logits_by_exactly_lr() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = TunasAgent(evaluator.space, {"lr": 0.05, "batch_size": 2}, seed=0)
    good = Proposal(evaluator.space.from_indices([1, 2, 3]))
    bad = Proposal(evaluator.space.from_indices([0, 0, 0]))
    first = agent.tell([(good, 80.0), (bad, 20.0)])  # baseline <- mean 50: advantages +-30
    expected = torch.zeros(3, 4)
    expected[[0, 1, 2], [1, 2, 3]] = 0.05
    expected[[0, 1, 2], [0, 0, 0]] = -0.05
    torch.testing.assert_close(agent.controller.logits.detach(), expected, atol=1e-6, rtol=0)
    assert first["baseline"] == 50.0 and first["reward_mean"] == 50.0 and first["lr"] == 0.05
    assert first["advantage_mean"] == 0.0 and first["advantage_std"] == pytest.approx(math.sqrt(2) * 30)

    single = TunasAgent(evaluator.space, {"lr": 0.05}, seed=0)
    diag = single.tell([(good, 80.0)])
    assert diag["advantage_mean"] == 0.0
    assert torch.count_nonzero(single.controller.logits.detach()) == 0
    diag = single.tell([(good, 100.0)])  # bias-corrected EMA: (0.95 * 0.05 * 80 + 0.05 * 100) / (0.95 * 0.05 + 0.05)
    assert diag["baseline"] == pytest.approx((0.0475 * 80 + 0.05 * 100) / 0.0975)


def test_learning_rate_grows_exponentially_after_the_delay() -> None:
    agent = TunasAgent(ToyEvaluator(2, 3).space, {"lr": 0.01, "lr_growth": 10.0, "rl_delay": 0.25}, seed=0)
    total = 121
    assert agent.rl_start(total) == 30
    assert agent.learning_rate(29, total) == 0.0
    assert agent.learning_rate(30, total) == pytest.approx(0.01)
    assert agent.learning_rate(75, total) == pytest.approx(0.01 * math.sqrt(10))  # half way from 30 to 120
    assert agent.learning_rate(120, total) == pytest.approx(0.1)
    ratios = [agent.learning_rate(s + 1, total) / agent.learning_rate(s, total) for s in range(30, 120)]
    assert np.allclose(ratios, 10 ** (1 / 90))  # a constant factor per step: exponential
    rounds = [agent.plan_round(s, total, 10) for s in (0, 29, 30, 120)]
    assert rounds == [(1, 0), (1, 0), (1, 1), (1, 1)]
    constant = TunasAgent(ToyEvaluator(2, 3).space, {"lr": 0.01, "lr_growth": 1.0, "rl_delay": 0.0}, seed=0)
    assert {constant.learning_rate(s, total) for s in range(total)} == {0.01}


def test_tell_uses_the_scheduled_learning_rate() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = TunasAgent(evaluator.space, {"lr": 0.02, "rl_delay": 0.5}, seed=1)
    told = search(agent, evaluator.reward_of, 40)
    assert len(told) == 20
    assert [d["lr"] for d in told] == pytest.approx([agent.learning_rate(s, 40) for s in range(20, 40)])


def test_controller_finds_the_known_optimum_and_its_entropy_falls() -> None:
    evaluator = ToyEvaluator(5, 4)
    agent = TunasAgent(evaluator.space, {"lr": 0.05, "rl_delay": 0.25}, seed=0)
    told = search(agent, lambda c: evaluator.reward_of(c) / 100, 400)
    assert agent.mode() == evaluator.optimum
    assert told[0]["entropy"] == pytest.approx(5 * math.log(4))
    assert agent.entropy() < 0.1 * told[0]["entropy"]


@pytest.mark.parametrize("target", [6.0, 12.0, 18.0])
def test_absolute_reward_steers_the_argmax_to_the_cost_target(target: float) -> None:
    # Cost = sum of the choice indices (0..24 over 8 decisions of 4 choices), quality a small
    # preference for high indices; the absolute reward q + beta |c/T - 1| trades them off.
    space = ToyEvaluator(8, 4).space

    def cost(c) -> float:
        return float(sum(space.indices(c)))

    def reward(c) -> float:
        return 0.01 * cost(c) / 24 - 0.5 * abs(cost(c) / target - 1)

    agent = TunasAgent(space, {"lr": 0.03, "batch_size": 4}, seed=3)
    search(agent, reward, 400)
    assert abs(cost(agent.mode()) / target - 1) <= 0.05 + 1e-9


def test_same_seed_same_search_and_state_round_trip() -> None:
    evaluator = ToyEvaluator(4, 4)
    runs = []
    for _ in range(2):
        agent = TunasAgent(evaluator.space, {"batch_size": 2}, seed=7)
        search(agent, evaluator.reward_of, 30)
        runs.append(agent.controller.logits.detach().clone())
    assert torch.equal(runs[0], runs[1])
    buffer = __import__("io").BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    restored = TunasAgent(evaluator.space, {"batch_size": 2}, seed=0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert [restored.ask(2)[0].candidate for _ in range(3)] == [agent.ask(2)[0].candidate for _ in range(3)]


@pytest.mark.parametrize("options, fragment", [
    ({"lr": 0}, r"lr must be a number in \(0, 100\]"),
    ({"lr": 1e300}, r"lr must be a number in \(0, 100\]"),
    ({"lr_growth": -1.0}, "lr_growth must be a positive number with lr · lr_growth at most 100"),
    ({"lr_growth": 1e40}, "lr_growth must be a positive number with lr · lr_growth at most 100"),
    ({"baseline_decay": 1.0}, r"baseline_decay must be in \[0, 1\)"),
    ({"batch_size": 0}, "batch_size must be an integer from 1 to 65,536"),
    ({"batch_size": 1_000_000_000}, "batch_size must be an integer from 1 to 65,536"),
    ({"rl_delay": 1.0}, r"rl_delay must be in \[0, 1\)"),
    ({"entropy_weight": -0.1}, r"entropy_weight must be a number in \[0, 100\]"),
    ({"entropy_weight": 1e300}, r"entropy_weight must be a number in \[0, 100\]"),
    ({"controller": "lstm"}, "unknown option"),
])
def test_bad_config(options: dict, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        TunasAgent(ToyEvaluator(2, 3).space, options)
