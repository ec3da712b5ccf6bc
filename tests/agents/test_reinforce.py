"""REINFORCE: contract, closed-form first update, baseline, failures, config errors and learning."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlnas.agents import create_agent
from rlnas.agents.base import Proposal
from rlnas.agents.reinforce import ReinforceAgent, ReinforceConfig
from rlnas.errors import ConfigError
from rlnas.spaces import create_space
from rlnas.testing import ToyEvaluator
from rlnas.testing.agent_contract import check_agent_contract, conv3x3_count, rewards_of_search

torch.set_num_threads(1)


@pytest.mark.parametrize("config", [{}, {"controller": "lstm", "lstm_hidden": 16}, {"batch_size": 3},
                                    {"controller": "lstm", "temperature": 5.0, "tanh_constant": 2.5,
                                     "entropy_weight": 0.01, "batch_size": 2}])
def test_contract_on_a_toy_space(config: dict) -> None:
    evaluator = ToyEvaluator(4, 5)
    check_agent_contract(lambda space, seed: ReinforceAgent(space, config, seed=seed), evaluator.space,
                         evaluator.reward_of, batches=6)


@pytest.mark.parametrize("controller", ["factorized", "lstm"])
def test_contract_on_nb201_from_the_registry(controller: str) -> None:
    check_agent_contract(lambda space, seed: create_agent("reinforce", space, {"controller": controller}, seed=seed),
                         create_space("nb201"), conv3x3_count, batches=6)


def test_first_update_moves_logits_by_exactly_lr() -> None:
    # Two proposals with opposite advantages: the gradient is -A/2 on the better one's logits and
    # +A/2 on the worse one's (0 elsewhere), and Adam's first step is lr * sign(-gradient).
    evaluator = ToyEvaluator(3, 4)
    agent = ReinforceAgent(evaluator.space, {"lr": 0.05, "batch_size": 2}, seed=0)
    good = Proposal(evaluator.space.from_indices([1, 2, 3]))
    bad = Proposal(evaluator.space.from_indices([0, 0, 0]))
    diagnostics = agent.tell([(good, 80.0), (bad, 20.0)])
    expected = torch.zeros(3, 4)
    expected[[0, 1, 2], [1, 2, 3]] = 0.05
    expected[[0, 1, 2], [0, 0, 0]] = -0.05
    assert torch.allclose(agent.controller.logits.detach(), expected, atol=1e-6)
    assert diagnostics["baseline"] == pytest.approx(50.0)
    assert diagnostics["advantage_mean"] == pytest.approx(0.0)
    assert diagnostics["advantage_std"] == pytest.approx(math.sqrt(2 * 30.0 ** 2))
    assert diagnostics["reward_mean"] == pytest.approx(50.0)
    assert diagnostics["entropy"] == pytest.approx(3 * math.log(4), rel=1e-6)
    assert set(diagnostics) >= {"entropy", "baseline", "advantage_mean", "advantage_std", "loss", "reward_mean"}


def test_baseline_is_the_bias_corrected_ema_of_earlier_rewards() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = ReinforceAgent(evaluator.space, {"baseline_decay": 0.5}, seed=0)
    seen = []
    for reward in (10.0, 30.0, 70.0):
        (p,) = agent.ask()
        seen.append(agent.tell([(p, reward)]))
    assert [d["baseline"] for d in seen] == pytest.approx([10.0, 10.0, (0.5 * 10 * 0.5 + 0.5 * 30) / 0.75])
    assert [d["advantage_mean"] for d in seen] == pytest.approx([0.0, 20.0, 70.0 - 17.5 / 0.75])


def test_failed_trials_are_skipped_and_batches_fill_with_successes() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = ReinforceAgent(evaluator.space, {"batch_size": 2}, seed=0)
    before = agent.controller.logits.detach().clone()
    p = agent.ask(3)
    assert agent.tell([(p[0], None), (p[1], None)]) == {}
    assert agent.tell([(p[2], 50.0), (p[0], float("nan"))]) == {}
    assert torch.equal(agent.controller.logits.detach(), before) and agent.updates == 0
    diagnostics = agent.tell([(p[1], 70.0)])
    assert agent.updates == 1 and diagnostics["reward_mean"] == pytest.approx(60.0)
    assert agent.told == 5


def test_info_holds_indices_and_sampling_log_prob() -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = ReinforceAgent(evaluator.space, seed=3)
    for p in agent.ask(5):
        assert evaluator.space.from_indices(p.info["indices"]) == p.candidate
        assert p.info["log_prob"] == pytest.approx(-4 * math.log(5))


def test_same_seed_same_run_and_other_seed_differs() -> None:
    evaluator = ToyEvaluator(4, 5)
    runs = [[evaluator.space.key(p.candidate) for p in agent_run(seed, evaluator)] for seed in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def agent_run(seed: int, evaluator: ToyEvaluator) -> list[Proposal]:
    agent = ReinforceAgent(evaluator.space, {"lr": 0.05}, seed=seed)
    proposals = []
    for _ in range(40):
        (p,) = agent.ask()
        agent.tell([(p, evaluator.reward_of(p.candidate))])
        proposals.append(p)
    return proposals


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factorized_reinforce_finds_the_toy_optimum(seed: int) -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = ReinforceAgent(evaluator.space, {"lr": 0.05}, seed=seed)
    rewards = rewards_of_search(agent, evaluator.reward_of, 300)
    assert agent.mode() == evaluator.optimum
    assert np.mean(rewards[-100:]) > evaluator.random_mean() + 50  # random: 24.2, optimum: 100


def test_lstm_reinforce_finds_the_toy_optimum() -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = ReinforceAgent(evaluator.space, {"controller": "lstm", "lr": 0.01, "batch_size": 5}, seed=0)
    rewards = rewards_of_search(agent, evaluator.reward_of, 300)
    assert agent.mode() == evaluator.optimum
    assert np.mean(rewards[-100:]) > evaluator.random_mean() + 50


@pytest.mark.parametrize("options,message", [
    ({"controller": "gru"}, "reinforce: unknown controller 'gru' (choices: factorized, lstm)"),
    ({"lr": -0.1}, "reinforce: lr must be a number in (0, 100], got -0.1"),
    ({"lr": 1e300}, "reinforce: lr must be a number in (0, 100], got 1e+300"),
    ({"batch_size": 0}, "reinforce: batch_size must be an integer from 1 to 65,536, got 0"),
    ({"batch_size": 1_000_000_000}, "reinforce: batch_size must be an integer from 1 to 65,536, got 1000000000"),
    ({"baseline_decay": 1.0}, "reinforce: baseline_decay must be in [0, 1), got 1.0"),
    ({"entropy_weight": -1}, "reinforce: entropy_weight must be a number in [0, 100], got -1"),
    ({"entropy_weight": 1e300}, "reinforce: entropy_weight must be a number in [0, 100], got 1e+300"),
    ({"tanh_constant": 0}, "reinforce: tanh_constant must be a number in (0, 1000] or null, got 0"),
    ({"tanh_constant": 1e39}, "reinforce: tanh_constant must be a number in (0, 1000] or null, got 1e+39"),
    ({"temperature": 1e-46}, "reinforce: temperature must be a number in (0.001, 1000] or null, got 1e-46"),
    ({"reward_scale": float("inf")}, "reinforce: reward_scale must be a number in (0, 1e+06], got inf"),
    ({"reward_scale": 1e39}, "reinforce: reward_scale must be a number in (0, 1e+06], got 1e+39"),
    ({"fail_reward": -1e300}, "reinforce: fail_reward must be a number in [-1e+30, 1e+30] or null, got -1e+300"),
    ({"lstm_hidden": 2.5}, "reinforce: lstm_hidden must be an integer from 1 to 4,096, got 2.5"),
    ({"lstm_hidden": 100_000_000}, "reinforce: lstm_hidden must be an integer from 1 to 4,096, got 100000000"),
])
def test_bad_config_is_a_one_line_config_error(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        ReinforceConfig(**options)
    assert str(error.value) == message and "\n" not in message
    with pytest.raises(ConfigError):
        create_agent("reinforce", ToyEvaluator().space, options)


def test_lr_default_is_natsbench_for_factorized_and_lower_for_lstm() -> None:
    assert ReinforceConfig().lr == 0.01 and ReinforceConfig(controller="lstm").lr == 0.005
    assert ReinforceConfig(lr=0.2).lr == 0.2
    assert ReinforceConfig.from_dict(ReinforceConfig().to_dict()) == ReinforceConfig()


@pytest.mark.parametrize("agent", ["reinforce", "ppo", "enas", "tunas"])
def test_a_reward_beyond_float32_is_a_one_line_error_not_a_nan_controller(agent: str) -> None:
    from rlnas.errors import RlnasError

    learner = create_agent(agent, ToyEvaluator().space, {"batch_size": 2}, seed=0)
    proposals = learner.ask(2)
    with pytest.raises(RlnasError, match=f"{agent}: reward 1e\\+38 is beyond what the controller learns from"):
        learner.tell([(proposals[0], 1e38), (proposals[1], 1.0)])
