"""ENAS agent: ENAS defaults, closed-form first steps, learning on a toy optimum with both algorithms,
the skip penalty, rounds, reproducibility, state round trips and bad configurations."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from rlnas.agents import create_agent
from rlnas.agents.base import Proposal, WeightSharingAgent
from rlnas.agents.controllers import LSTMController
from rlnas.agents.enas import EnasAgent, EnasConfig, skip_groups
from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate, Categorical, Space
from rlnas.spaces.enas import EnasMacroSpace
from rlnas.testing import ToyEvaluator
from rlnas.testing.agent_contract import check_agent_contract, roundtrip_state

torch.set_num_threads(1)
ALGOS = ("ppo", "reinforce")
FAST = {"lr": 0.01, "lstm_hidden": 32}


def search(agent: EnasAgent, reward: Callable[[Candidate], float | None], total_steps: int,
           steps_per_epoch: int) -> tuple[list[Candidate], list[dict[str, float]]]:
    """The weight-sharing loop with no weights: rounds of sampled training children, then controller updates."""
    step, trained, diagnostics = 0, [], []
    while True:
        shared, updates = agent.plan_round(step, total_steps, steps_per_epoch)
        if shared == 0:
            return trained, diagnostics
        trained += agent.train_children(shared)
        step += shared
        for _ in range(updates):
            proposals = agent.ask(agent.batch_size)
            diagnostics.append(agent.tell([(p, reward(p.candidate)) for p in proposals]))


def test_defaults_are_enas_settings() -> None:
    cfg = EnasConfig()
    assert (cfg.algo, cfg.controller, cfg.lr, cfg.lstm_hidden, cfg.temperature, cfg.tanh_constant) == \
        ("ppo", "lstm", 3.5e-4, 100, 5.0, 2.5)
    assert (cfg.entropy_weight, cfg.baseline_decay, cfg.skip_target, cfg.skip_weight) == (1e-4, 0.99, 0.4, 0.8)
    agent = create_agent("enas", ToyEvaluator(3, 4).space, seed=0)
    assert isinstance(agent, WeightSharingAgent)
    assert isinstance(agent.controller, LSTMController) and agent.controller.hidden == 100
    assert agent.optimizer.param_groups[0]["lr"] == 3.5e-4
    assert agent.normalize and not EnasAgent(agent.space, {"algo": "reinforce"}).normalize


@pytest.mark.parametrize("algo", ALGOS)
def test_first_step_moves_logits_by_exactly_lr(algo: str) -> None:
    # Factorized controller; the first Adam step moves each logit by lr against the sign of its
    # gradient: up on the better child's choices, down on the worse one's, nothing else.
    evaluator = ToyEvaluator(3, 4)
    agent = EnasAgent(evaluator.space, {"algo": algo, "controller": "factorized", "lr": 0.05, "batch_size": 2,
                                        "ppo_epochs": 1, "reward_scale": 0.25, "entropy_weight": 0.0}, seed=0)
    uniform = -3 * math.log(4)
    good = Proposal(evaluator.space.from_indices([1, 2, 3]), {"log_prob": uniform})
    bad = Proposal(evaluator.space.from_indices([0, 0, 0]), {"log_prob": uniform})
    diagnostics = agent.tell([(good, 80.0), (bad, 20.0)])
    expected = torch.zeros(3, 4)
    expected[[0, 1, 2], [1, 2, 3]] = 0.05
    expected[[0, 1, 2], [0, 0, 0]] = -0.05
    assert torch.allclose(agent.controller.logits.detach(), expected, atol=1e-6)
    assert diagnostics["baseline"] == 12.5  # shaped rewards 20 and 5; the first batch's baseline is their mean
    assert diagnostics["reward_mean"] == 50.0 and diagnostics["advantage_std"] == pytest.approx(math.sqrt(2) * 7.5)
    assert diagnostics["entropy"] == pytest.approx(3 * math.log(4), rel=1e-6)
    assert diagnostics["approx_kl"] > 0
    assert set(diagnostics) >= {"entropy", "approx_kl", "clip_fraction", "baseline", "policy_loss", "loss",
                                "advantage_mean", "advantage_std", "reward_mean", "shaped_reward_mean"}
    assert "skip_rate" not in diagnostics  # no skip decisions in the toy space


def test_the_path_entropy_joins_the_reward_and_the_baseline_follows_it() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = EnasAgent(evaluator.space, {"controller": "factorized", "batch_size": 2, "baseline_decay": 0.5}, seed=0)
    first = agent.tell([(p, r) for p, r in zip(agent.ask(2), (40.0, 60.0))])
    shaped = 0.5 + 1e-4 * 3 * math.log(4)  # 0.01 * mean reward + 1e-4 * the (uniform) path entropy
    assert first["shaped_reward_mean"] == pytest.approx(shaped, rel=1e-5)
    second = agent.tell([(p, r) for p, r in zip(agent.ask(2), (10.0, 10.0))])
    # Bias-corrected EMA of the shaped rewards 0.4 + e and 0.6 + e with decay 0.5.
    assert second["baseline"] == pytest.approx((0.25 * 0.4 + 0.5 * 0.6) / 0.75 + shaped - 0.5, rel=1e-4)


def test_ppo_clips_stale_children_and_reinforce_does_not() -> None:
    # Children recorded as 1 nat less likely than they are now: ratio e > 1 + clip. PPO's positive
    # advantage terms are clipped (no gradient); REINFORCE ignores the recorded probability.
    evaluator = ToyEvaluator(3, 4)
    moved = {}
    for algo in ALGOS:
        agent = EnasAgent(evaluator.space, {"algo": algo, "controller": "factorized", "lr": 0.05, "batch_size": 2,
                                            "ppo_epochs": 1, "entropy_weight": 0.0, "normalize_advantages": False},
                          seed=0)
        agent.tell([(Proposal(evaluator.space.from_indices([1, 1, 1])), 50.0),
                    (Proposal(evaluator.space.from_indices([2, 2, 2])), 50.0)])  # baseline 0.5
        before = agent.controller.logits.detach().clone()
        stale = agent.controller.log_prob_and_entropy(torch.tensor([[1, 2, 3]]))[0].item() - 1.0
        good = Proposal(evaluator.space.from_indices([1, 2, 3]), {"log_prob": stale})
        diagnostics = agent.tell([(good, 80.0), (good, 90.0)])
        moved[algo] = not torch.equal(agent.controller.logits.detach(), before)
        assert diagnostics["clip_fraction"] == 1.0  # both report the ratio beyond 1 + clip
    assert moved == {"ppo": False, "reinforce": True}


@pytest.mark.parametrize("algo", ALGOS)
def test_finds_the_toy_optimum(algo: str) -> None:
    evaluator = ToyEvaluator(4, 5)
    agent = EnasAgent(evaluator.space, {"algo": algo, **FAST, "controller_steps": 10}, seed=0)
    _, diagnostics = search(agent, evaluator.reward_of, total_steps=40, steps_per_epoch=10)
    first, last = diagnostics[0], diagnostics[-1]
    assert len(diagnostics) == 40 and agent.updates == 40
    assert agent.mode() == evaluator.optimum
    assert last["reward_mean"] > 95.0 > evaluator.random_mean() + 40
    assert last["entropy"] < 0.5 * first["entropy"]
    assert first["entropy"] == pytest.approx(4 * math.log(5), rel=0.01)  # near-uniform at start


@pytest.mark.parametrize("algo", ALGOS)
def test_skip_penalty_pulls_the_skip_rate_to_its_target(algo: str) -> None:
    # A constant reward gives no advantage: only the skip penalty moves the skip decisions.
    space = EnasMacroSpace(layers=4)
    assert [[space.decisions[k].name for k in group] for group in skip_groups(space)] == \
        [["l1_skip0"], ["l2_skip0", "l2_skip1"], ["l3_skip0", "l3_skip1", "l3_skip2"]]

    def skip_probability(agent: EnasAgent) -> float:
        paths = torch.tensor([agent.space.indices(p.candidate) for p in agent.ask(200)])
        log_probs = agent.controller.decision_log_probs(paths)
        return torch.stack([log_probs[k][:, 1].exp() for g in skip_groups(space) for k in g]).mean().item()

    agent = EnasAgent(space, {"algo": algo, **FAST, "entropy_weight": 0.0, "skip_target": 0.2}, seed=0)
    start = skip_probability(agent)
    assert start == pytest.approx(0.5, abs=0.02)
    for u in range(60):
        diagnostics = agent.tell([(p, 50.0) for p in agent.ask(agent.batch_size)])
        if u == 0:
            # Mean over layers of the summed KL(0.5 || 0.2) of their 1, 2, 3 skips = 2 * KL. REINFORCE
            # reports it before its step, PPO after its last epoch (already lower).
            kl = 0.5 * math.log(0.5 / 0.2) + 0.5 * math.log(0.5 / 0.8)
            if algo == "reinforce":
                assert diagnostics["skip_penalty"] == pytest.approx(2 * kl, rel=0.1)
            else:
                assert 1.2 * kl < diagnostics["skip_penalty"] < 2 * kl
    assert skip_probability(agent) == pytest.approx(0.2, abs=0.05)
    assert 0.1 < diagnostics["skip_rate"] < 0.35

    off = EnasAgent(space, {"algo": algo, **FAST, "entropy_weight": 0.0, "skip_weight": 0.0}, seed=0)
    for _ in range(60):
        diagnostics = off.tell([(p, 50.0) for p in off.ask(off.batch_size)])
    assert "skip_penalty" not in diagnostics
    assert skip_probability(off) == pytest.approx(start, abs=0.02)


def test_rounds_follow_the_plan() -> None:
    agent = EnasAgent(EnasMacroSpace(layers=4), {"controller_steps": 3, "epochs_per_round": 2, "batch_size": 2},
                      seed=0)
    assert agent.plan_round(0, 50, 10) == (20, 3)
    assert agent.plan_round(40, 50, 10) == (10, 3)  # the last round is cut at the end
    assert agent.plan_round(25, 50, 10) == (15, 3)  # a round entered mid-way ends on the round boundary
    assert agent.plan_round(50, 50, 10) == (0, 0)
    trained, diagnostics = search(agent, lambda c: 50.0, total_steps=50, steps_per_epoch=10)
    assert len(trained) == 50 and len(diagnostics) == 9 and agent.updates == 9
    assert len(set(trained)) > 45  # every training step gets a freshly sampled child


@pytest.mark.parametrize("algo", ALGOS)
def test_same_seed_same_run_other_seed_differs(algo: str) -> None:
    space = EnasMacroSpace(layers=3)
    evaluator = ToyEvaluator(len(space.decisions), 2)  # reward: agreement with a fixed pattern

    def run(seed: int) -> list[str]:
        agent = EnasAgent(space, {"algo": algo, **FAST, "controller_steps": 2, "batch_size": 3}, seed=seed)
        trained, _ = search(agent, lambda c: evaluator.reward_of(evaluator.space.from_indices(
            [i % 2 for i in space.indices(c)])), total_steps=12, steps_per_epoch=4)
        return [space.key(c) for c in trained] + [space.key(agent.mode())]

    assert run(3) == run(3)
    assert run(3) != run(4)


@pytest.mark.parametrize("algo", ALGOS)
def test_contract_and_state_round_trip(algo: str) -> None:
    evaluator = ToyEvaluator(4, 5)
    config = {"algo": algo, **FAST, "batch_size": 3}
    check_agent_contract(lambda space, seed: EnasAgent(space, config, seed=seed), evaluator.space,
                         evaluator.reward_of, batches=4)
    # A restored agent also samples the same training children and plans the same rounds.
    space = EnasMacroSpace(layers=3)
    original = EnasAgent(space, {**config, "controller_steps": 2}, seed=1)
    search(original, lambda c: float(sum(space.indices(c))), total_steps=6, steps_per_epoch=3)
    restored = EnasAgent(space, {**config, "controller_steps": 2}, seed=7)
    restored.load_state_dict(roundtrip_state(original))
    runs = [search(a, lambda c: float(sum(space.indices(c))), total_steps=6, steps_per_epoch=3)
            for a in (original, restored)]
    assert runs[0][0] == runs[1][0] and runs[0][1] == runs[1][1]


def test_failed_children_are_skipped() -> None:
    evaluator = ToyEvaluator(3, 4)
    agent = EnasAgent(evaluator.space, {"batch_size": 3}, seed=0)
    p = agent.ask(3)
    assert agent.tell([(p[0], None), (p[1], 10.0), (p[2], float("nan"))]) == {}
    diagnostics = agent.tell([(q, 30.0) for q in agent.ask(2)])
    assert agent.updates == 1 and diagnostics["reward_mean"] == pytest.approx(70.0 / 3)
    learns = EnasAgent(evaluator.space, {"batch_size": 3, "fail_reward": 0.0}, seed=0)
    p = learns.ask(3)
    diagnostics = learns.tell([(p[0], None), (p[1], 30.0), (p[2], float("nan"))])  # failures learned as 0
    assert learns.updates == 1 and diagnostics["reward_mean"] == pytest.approx(10.0)


def test_skip_decisions_must_be_binary() -> None:
    space = Space("s", [Categorical("l1_op", (0, 1)), Categorical("l1_skip0", (0, 1, 2))])
    with pytest.raises(ConfigError, match="reads 'l1_skip0' as a skip connection .* it has 3 choices"):
        EnasAgent(space, seed=0)
    assert EnasAgent(space, {"skip_weight": 0.0}, seed=0).skip_groups == []


@pytest.mark.parametrize("option, value, fragment", [
    ("algo", "a2c", "unknown algo 'a2c'"),
    ("controller_steps", 0, "controller_steps must be an integer from 1 to 100,000"),
    ("ppo_epochs", 1.5, "ppo_epochs must be an integer from 1 to 100,000"),
    ("controller_steps", 10 ** 9, "controller_steps must be an integer from 1 to 100,000"),
    ("skip_target", 1.0, "skip_target must be in (0, 1)"),
    ("skip_weight", -1, "skip_weight must be a number >= 0"),
    ("reward_scale", 0, "reward_scale must be a number in (0, 1e+06]"),
    ("clip", float("nan"), "clip must be a positive number"),
    ("normalize_advantages", "yes", "normalize_advantages must be true, false or null"),
    ("lr", -1.0, "lr must be a number in (0, 100]"), ("lr", 1e300, "lr must be a number in (0, 100]"),
    ("lstm_hidden", 100_000_000, "lstm_hidden must be an integer from 1 to 4,096"),
    ("epochs", 3, "unknown option(s) ['epochs']"),
])
def test_bad_configurations(option: str, value: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        EnasAgent(ToyEvaluator(3, 4).space, {option: value})
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("kind", ["factorized", "lstm"])
def test_decision_log_probs_agree_with_the_path_log_prob_and_entropy(kind: str) -> None:
    from rlnas.agents.controllers import build_controller, make_generator

    controller = build_controller(kind, (2, 3, 5), hidden=8, temperature=5.0, tanh_constant=2.5,
                                  generator=make_generator(0))
    if kind == "factorized":
        with torch.no_grad():
            controller.logits.normal_(generator=make_generator(1))
    indices, log_prob, entropy = controller.sample(7, make_generator(2))
    steps = controller.decision_log_probs(indices)
    assert [s.shape for s in steps] == [(7, 2), (7, 3), (7, 5)]
    assert all(torch.allclose(s.exp().sum(1), torch.ones(7)) for s in steps)
    assert torch.allclose(sum(s.gather(1, indices[:, [i]]).squeeze(1) for i, s in enumerate(steps)), log_prob)
    assert torch.allclose(-sum((s.exp() * s).sum(1) for s in steps), entropy)
