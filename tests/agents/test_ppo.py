"""PPO: contract, closed-form first step, clipping, baselines, failures, config errors and learning."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlnas.agents import create_agent
from rlnas.agents.base import Proposal
from rlnas.agents.ppo import PPOAgent, PPOConfig
from rlnas.errors import ConfigError
from rlnas.spaces import create_space
from rlnas.testing import ToyEvaluator
from rlnas.testing.agent_contract import check_agent_contract, conv3x3_count, rewards_of_search

torch.set_num_threads(1)


@pytest.mark.parametrize("config", [{"batch_size": 3}, {"controller": "lstm", "lstm_hidden": 16, "batch_size": 4},
                                    {"baseline": "value", "batch_size": 2, "normalize_advantages": False},
                                    {"batch_size": 1, "max_grad_norm": None, "entropy_weight": 0.01}])
def test_contract_on_a_toy_space(config: dict) -> None:
    evaluator = ToyEvaluator(4, 5)
    check_agent_contract(lambda space, seed: PPOAgent(space, config, seed=seed), evaluator.space,
                         evaluator.reward_of, batches=5)


@pytest.mark.parametrize("controller", ["factorized", "lstm"])
def test_contract_on_nb201_from_the_registry(controller: str) -> None:
    check_agent_contract(lambda space, seed: create_agent("ppo", space, {"controller": controller}, seed=seed),
                         create_space("nb201"), conv3x3_count, batches=3)


def test_one_epoch_moves_logits_by_exactly_lr_and_nothing_is_clipped() -> None:
    # At the first epoch the ratio is 1, so PPO's gradient is REINFORCE's: -A/2 on the better
    # candidate's logits, +A/2 on the worse one's; Adam's first step is lr * sign(-gradient).
    evaluator = ToyEvaluator(3, 4)
    agent = PPOAgent(evaluator.space, {"lr": 0.05, "batch_size": 2, "epochs": 1, "entropy_weight": 0.0}, seed=0)
    good = Proposal(evaluator.space.from_indices([1, 2, 3]), {"log_prob": -3 * math.log(4)})
    bad = Proposal(evaluator.space.from_indices([0, 0, 0]), {"log_prob": -3 * math.log(4)})
    diagnostics = agent.tell([(good, 80.0), (bad, 20.0)])
    expected = torch.zeros(3, 4)
    expected[[0, 1, 2], [1, 2, 3]] = 0.05
    expected[[0, 1, 2], [0, 0, 0]] = -0.05
    assert torch.allclose(agent.controller.logits.detach(), expected, atol=1e-6)
    assert diagnostics["clip_fraction"] == 0.0
    assert diagnostics["entropy"] == pytest.approx(3 * math.log(4), rel=1e-6)
    assert diagnostics["baseline"] == pytest.approx(50.0)
    assert diagnostics["advantage_std"] == pytest.approx(math.sqrt(2) * 30.0)
    # approx_kl = mean((r - 1) - log r) of the new policy against the sampling one, computable here.
    new_lp = agent.controller.log_prob_and_entropy(torch.tensor([[1, 2, 3], [0, 0, 0]]))[0].detach()
    log_ratio = new_lp + 3 * math.log(4)
    assert diagnostics["approx_kl"] == pytest.approx(((log_ratio.exp() - 1) - log_ratio).mean().item(), rel=1e-5)
    assert diagnostics["approx_kl"] > 0
    assert set(diagnostics) >= {"entropy", "approx_kl", "clip_fraction", "policy_loss", "baseline",
                                "advantage_mean", "advantage_std", "loss", "reward_mean"}


def test_stale_log_probs_are_clipped_and_a_fully_clipped_batch_does_not_move() -> None:
    # The recorded sampling log-prob is 1 nat below the current one: ratio e > 1 + clip. With a
    # positive advantage that term is clipped (no gradient); the negative one is not.
    evaluator = ToyEvaluator(3, 4)
    agent = PPOAgent(evaluator.space, {"batch_size": 2, "epochs": 1, "normalize_advantages": False}, seed=0)
    agent.tell([(Proposal(evaluator.space.from_indices([1, 1, 1])), 50.0),
                (Proposal(evaluator.space.from_indices([2, 2, 2])), 50.0)])  # sets the baseline to 50
    before = agent.controller.logits.detach().clone()
    lp_good = agent.controller.log_prob_and_entropy(torch.tensor([[1, 2, 3]]))[0].item()
    good = Proposal(evaluator.space.from_indices([1, 2, 3]), {"log_prob": lp_good - 1.0})
    diagnostics = agent.tell([(good, 80.0), (good, 90.0)])
    assert diagnostics["clip_fraction"] == 1.0
    assert torch.equal(agent.controller.logits.detach(), before)


def test_missing_sampling_log_prob_is_scored_with_the_current_policy() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = PPOAgent(evaluator.space, {"batch_size": 2, "epochs": 1}, seed=0)
    diagnostics = agent.tell([(Proposal(evaluator.space.from_indices([1, 2, 3])), 80.0),
                              (Proposal(evaluator.space.from_indices([0, 0, 0])), 20.0)])
    assert diagnostics["clip_fraction"] == 0.0


def test_value_baseline_starts_at_the_first_mean_and_is_fitted_by_mse() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = PPOAgent(evaluator.space, {"baseline": "value", "batch_size": 2, "epochs": 3, "value_lr": 0.5,
                                       "normalize_advantages": False}, seed=0)
    first = agent.tell([(p, r) for p, r in zip(agent.ask(2), (40.0, 60.0))])
    # value_loss is from the last epoch; it started at 100 (= mean squared deviation from 50).
    assert first["baseline"] == pytest.approx(50.0) and first["value_loss"] == pytest.approx(100.0, rel=0.1)
    fitted = agent.value.item()
    second = agent.tell([(p, r) for p, r in zip(agent.ask(2), (90.0, 90.0))])
    assert second["baseline"] == pytest.approx(fitted)
    assert fitted + 1.0 < agent.value.item() < 90.0  # three Adam steps of 0.5 towards the new rewards
    assert second["advantage_mean"] == pytest.approx(90.0 - second["baseline"])


def test_ema_baseline_uses_earlier_batches_only() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = PPOAgent(evaluator.space, {"batch_size": 2, "baseline_decay": 0.5}, seed=0)
    first = agent.tell([(p, r) for p, r in zip(agent.ask(2), (40.0, 60.0))])
    second = agent.tell([(p, r) for p, r in zip(agent.ask(2), (10.0, 10.0))])
    assert first["baseline"] == pytest.approx(50.0)
    # EMA after 40, 60 with decay 0.5: (0.25*40 + 0.5*60) / 0.75.
    assert second["baseline"] == pytest.approx((0.25 * 40 + 0.5 * 60) / 0.75)


def test_a_batch_of_equal_rewards_is_not_divided_by_its_zero_spread() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = PPOAgent(evaluator.space, {"batch_size": 2, "baseline_decay": 0.5}, seed=0)
    agent.tell([(p, r) for p, r in zip(agent.ask(2), (40.0, 60.0))])
    # both 0.0067 above the baseline 53.33: divided by std + 1e-8 that was an advantage of 6.7e5, whose
    # policy loss swamped the entropy bonus; now the bonus (0.01 · entropy) outweighs the tiny advantage
    diagnostics = agent.tell([(p, r) for p, r in zip(agent.ask(2), (53.34, 53.34))])
    assert diagnostics["advantage_std"] == 0.0
    assert diagnostics["policy_loss"] == pytest.approx(-diagnostics["advantage_mean"], rel=0.2)
    assert abs(diagnostics["policy_loss"]) < 0.01 * diagnostics["entropy"]


def test_failed_trials_are_skipped_until_a_batch_of_successes_is_complete() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = PPOAgent(evaluator.space, {"batch_size": 3}, seed=0)
    p = agent.ask(3)
    assert agent.tell([(p[0], None), (p[1], 10.0), (p[2], 20.0)]) == {}
    assert agent.updates == 0
    assert agent.tell([(q, None) for q in agent.ask(3)]) == {}
    diagnostics = agent.tell([(agent.ask(1)[0], 30.0)])
    assert agent.updates == 1 and diagnostics["reward_mean"] == pytest.approx(20.0)


@pytest.mark.parametrize("controller", ["factorized", "lstm"])
def test_same_seed_same_run_and_other_seed_differs(controller: str) -> None:
    evaluator = ToyEvaluator(4, 5)

    def run(seed: int) -> list[str]:
        agent = PPOAgent(evaluator.space, {"controller": controller, "batch_size": 5}, seed=seed)
        keys = []
        for _ in range(6):
            proposals = agent.ask(5)
            agent.tell([(p, evaluator.reward_of(p.candidate)) for p in proposals])
            keys += [evaluator.space.key(p.candidate) for p in proposals]
        return keys

    assert run(4) == run(4)
    assert run(4) != run(5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factorized_ppo_finds_the_toy_optimum(seed: int) -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = PPOAgent(evaluator.space, seed=seed)
    rewards = rewards_of_search(agent, evaluator.reward_of, 300)
    assert agent.mode() == evaluator.optimum
    assert np.mean(rewards[-100:]) > evaluator.random_mean() + 50  # random: 24.2, optimum: 100


@pytest.mark.parametrize("seed", [0, 1])
def test_lstm_ppo_finds_the_toy_optimum(seed: int) -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = PPOAgent(evaluator.space, {"controller": "lstm"}, seed=seed)
    rewards = rewards_of_search(agent, evaluator.reward_of, 300)
    assert agent.mode() == evaluator.optimum
    assert np.mean(rewards[-100:]) > evaluator.random_mean() + 50


def test_lr_default_depends_on_the_controller_and_is_recorded() -> None:
    assert PPOConfig().lr == 0.05 and PPOConfig(controller="lstm").lr == 0.01
    assert PPOConfig(lr=0.3, controller="lstm").lr == 0.3
    assert PPOConfig.from_dict(PPOConfig(controller="lstm").to_dict()) == PPOConfig(controller="lstm")


@pytest.mark.parametrize("options,message", [
    ({"controller": "transformer"}, "ppo: unknown controller 'transformer' (choices: factorized, lstm)"),
    ({"lr": -1e-3}, "ppo: lr must be a number in (0, 100], got -0.001"),
    ({"epochs": 0}, "ppo: epochs must be an integer from 1 to 1,000, got 0"),
    ({"epochs": 100_000_000}, "ppo: epochs must be an integer from 1 to 1,000, got 100000000"),
    ({"clip": 1.5}, "ppo: clip must be in (0, 1), got 1.5"),
    ({"baseline": "critic"}, "ppo: unknown baseline 'critic' (choices: ema, value)"),
    ({"max_grad_norm": 0}, "ppo: max_grad_norm must be a positive number or null, got 0"),
    ({"normalize_advantages": "yes"}, "ppo: normalize_advantages must be true or false, got 'yes'"),
    ({"batch_size": True}, "ppo: batch_size must be an integer from 1 to 65,536, got True"),
    ({"baseline": "value", "value_lr": 1e39}, "ppo: value_lr must be a number in (0, 100], got 1e+39"),
])
def test_bad_config_is_a_one_line_config_error(options: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        PPOConfig(**options)
    assert str(error.value) == message
    with pytest.raises(ConfigError, match="unknown option"):
        create_agent("ppo", ToyEvaluator().space, {"learning_rate": 0.1})


def test_defaults_follow_the_methods() -> None:
    """Entropy bonus on; ENAS's logit shaping for the LSTM; advantages scaled, not centred."""
    config = PPOConfig()
    assert config.entropy_weight > 0 and config.normalize_advantages and not config.center_advantages
    assert (config.temperature, config.tanh_constant) == (5.0, 2.5)


def test_the_baseline_matters_unless_advantages_are_centred() -> None:
    """Same batch, two baselines: with scaling only the updates differ (the baseline sets the sign of
    each advantage); with centring they are identical (the batch mean cancels any constant)."""
    evaluator = ToyEvaluator(3, 4)
    batch = [(evaluator.space.from_indices([1, 2, 3]), 80.0), (evaluator.space.from_indices([0, 0, 0]), 60.0)]

    def logits_after(center: bool, baseline: float) -> torch.Tensor:
        agent = PPOAgent(evaluator.space, {"batch_size": 2, "epochs": 1, "entropy_weight": 0.0,
                                           "center_advantages": center}, seed=0)
        agent.ema.update([baseline])
        agent.tell([(Proposal(c, {"log_prob": -3 * math.log(4)}), r) for c, r in batch])
        return agent.controller.logits.detach().clone()

    assert not torch.allclose(logits_after(False, 50.0), logits_after(False, 90.0))
    # Baseline 50: both advantages positive, both candidates reinforced, so a choice neither took
    # loses mass; baseline 90: both discouraged, so it gains.
    assert (logits_after(False, 50.0)[0, 2] < 0) and (logits_after(False, 90.0)[0, 2] > 0)
    assert torch.allclose(logits_after(True, 50.0), logits_after(True, 90.0))
