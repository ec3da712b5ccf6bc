"""The optimizer evaluator: real training, best lr of the grid, divergence as a failed trial, pickling."""
from __future__ import annotations

import pickle

import pytest
import torch

from rlnas.errors import ConfigError
from rlnas.evaluators import create_evaluator
from rlnas.evaluators.optimizer import (
    OptimizerEvaluator,
    RuleDiverged,
    rule_of_candidate,
)
from rlnas.models.children import CHILD_NETWORKS, create_child
from rlnas.optim import rule
from rlnas.spaces.optimizer_rules import OptimizerRulesSpace
from rlnas.study import RunOptions, create_study, load_study
from rlnas.trial import TrialState


def tiny(**options) -> OptimizerEvaluator:
    """Digits with an MLP: a few hundred milliseconds per learning rate."""
    defaults = {"dataset": "digits", "network": "mlp", "steps": 40, "lr_grid": [0.01, 0.1], "threads": 1}
    return OptimizerEvaluator(**(defaults | options))


def test_training_with_a_good_rule_learns_and_reports_the_best_lr():
    measurement = tiny(lr_grid=[1e-4, 0.1, 1000.0]).evaluate_rule("sgd")
    per_lr = {d["lr"]: d for d in measurement.info["per_lr"]}
    assert per_lr[1e-4]["valid_acc"] < 50
    assert per_lr[0.1]["valid_acc"] > 80
    assert per_lr[1000.0]["valid_acc"] is None and per_lr[1000.0]["diverged"].startswith("loss")
    assert measurement.metrics["valid_acc"] == per_lr[0.1]["valid_acc"]
    assert measurement.metrics["best_lr"] == 0.1
    assert measurement.metrics["diverged_lrs"] == 1.0
    assert 0 < measurement.metrics["test_acc"] <= 100
    assert measurement.info["rule"] == "keep(g, 1)"


def test_same_seed_same_metrics_other_seed_other_run():
    evaluator = tiny()
    space = OptimizerRulesSpace(2)
    candidate = space.from_key("drop(g, 0.5) * sign(m); o1 + eps")
    first = evaluator.evaluate(candidate, seed=3)
    again = tiny().evaluate(candidate, seed=3)
    other = evaluator.evaluate(candidate, seed=4)
    drop = ("train_time_s",)
    assert {k: v for k, v in first.metrics.items() if k not in drop} == \
        {k: v for k, v in again.metrics.items() if k not in drop}
    assert first.info["per_lr"] == again.info["per_lr"]
    assert first.info["per_lr"] != other.info["per_lr"]


def test_a_rule_diverging_at_every_lr_raises_a_one_line_reason():
    with pytest.raises(RuleDiverged, match=r"rule '1 / 1e-4w' diverged at every learning rate \(lr 0\.01: loss") as err:
        tiny().evaluate_rule("1 / 1e-4w")
    assert "\n" not in str(err.value) and "lr 0.1:" in str(err.value)
    assert not isinstance(err.value, ConfigError)  # a ConfigError would stop the search


def test_non_finite_weights_count_as_divergence():
    # log|ld| = −inf at the last step: the loss was finite at every step, the weights are not
    with pytest.raises(RuleDiverged, match="a weight is not finite after step 40"):
        tiny(lr_grid=[0.01]).evaluate_rule("log(ld) * 1")


def test_study_stores_diverged_rules_as_failed_and_the_search_goes_on():
    evaluator = tiny(steps=5, divergence_loss=0.5)  # the first loss (about 2.3) already counts as diverged
    study = create_study(space=OptimizerRulesSpace(1), agent="reinforce", evaluator=evaluator, seed=0,
                         agent_config={"controller": "lstm", "batch_size": 3, "fail_reward": 0.0})
    with pytest.warns(UserWarning, match="no trial has completed"):
        study.optimize(6)
    trials = study.trials
    assert len(trials) == 6 and all(t.state is TrialState.FAIL for t in trials)
    assert all(t.error.startswith("RuleDiverged: rule ") for t in trials)
    assert all("diverged at every learning rate" in t.error for t in trials)
    # with fail_reward the controller still learned from the failures: two updates were logged
    assert [told for told, _ in study.diagnostics()] == [3, 6]


class EndlessSGD(OptimizerEvaluator):
    """Whatever the rule, trains with SGD (which never diverges here) far longer than any timeout."""

    def evaluate(self, candidate, *, budget=None, seed=None):
        return self.evaluate_rule("sgd", steps=10**7, seed=seed)


def test_rules_running_past_the_trial_timeout_are_failed_and_learned_as_failures():
    evaluator = EndlessSGD(dataset="digits", network="mlp", lr_grid=[0.01], threads=1)
    study = create_study(space=OptimizerRulesSpace(1), agent="reinforce", evaluator=evaluator, seed=0,
                         agent_config={"controller": "lstm", "batch_size": 2, "fail_reward": 0.0})
    with pytest.warns(UserWarning, match="no trial has completed"):
        study.optimize(2, run=RunOptions(trial_timeout=0.5))
    assert all(t.state is TrialState.FAIL and t.error.startswith("timeout") for t in study.trials)
    assert [told for told, _ in study.diagnostics()] == [2]


def test_a_stored_study_of_two_iteration_rules_reopens_with_its_space(sqlite_url):
    evaluator = tiny(steps=5, lr_grid=[0.1])
    study = create_study(space=OptimizerRulesSpace(2), agent="random", evaluator=evaluator, seed=0, name="it2",
                         storage=sqlite_url)
    study.optimize(2)
    again = load_study("it2", sqlite_url)
    assert isinstance(again.space, OptimizerRulesSpace) and again.space.iterations == 2
    again.optimize(3)
    assert len(again.trials) == 3
    assert all(len(again.space.from_key(t.key)) == 10 for t in again.trials)  # readable keys, 2 iterations


def test_study_with_real_rewards_stores_readable_keys():
    study = create_study(space=OptimizerRulesSpace(1), agent="ppo", evaluator=tiny(steps=10, lr_grid=[0.1]), seed=1,
                         agent_config={"controller": "lstm", "batch_size": 2, "fail_reward": 0.0})
    study.optimize(4)
    for t in study.trials:
        assert OptimizerRulesSpace(1).from_key(t.key) == OptimizerRulesSpace(1).candidate(t.candidate)
        if t.state is TrialState.COMPLETE:
            assert t.reward == t.metrics["valid_acc"] and t.metrics["best_lr"] == 0.1


def test_schedule_grows_the_steps_by_trial_and_budget_overrides_steps():
    evaluator = tiny(schedule=[[0, 10], [4, 20], [8, 40]])
    assert [evaluator.budget_for(slot) for slot in (0, 3, 4, 7, 8, 100)] == [10, 10, 20, 20, 40, 40]
    assert tiny().budget_for(5) == 40
    space = OptimizerRulesSpace(1)
    measured = evaluator.evaluate(space.from_key("keep(g, 1)"), budget=evaluator.budget_for(4))
    assert measured.info["steps"] == 20
    for bad in ([[1, 10]], [[0, 10], [0, 20]], [[0, 0]], [[0]], "fast"):
        with pytest.raises(ConfigError, match="schedule"):
            tiny(schedule=bad)


def test_study_optimize_gives_each_trial_the_schedules_budget():
    evaluator = tiny(lr_grid=[0.1], schedule=[[0, 3], [2, 6]])
    study = create_study(space=OptimizerRulesSpace(1), agent="random", evaluator=evaluator, seed=0)
    study.optimize(4)
    steps = {t.slot: t.eval_info["steps"] for t in study.trials if t.state is TrialState.COMPLETE}
    assert steps and all(value == (3 if slot < 2 else 6) for slot, value in steps.items())


def test_exact_random_trains_with_torchs_own_draws_and_joins_the_spec_only_when_set():
    rule_text = "drop(g, 0.5) + eps"
    fast, exact = tiny(lr_grid=[0.1]), tiny(lr_grid=[0.1], exact_random=True)
    assert "exact_random" not in fast.spec() and exact.spec()["exact_random"] is True
    # the tiny child's 4.8 k weights take the fast draws by default: another run than torch's draws
    assert fast.evaluate_rule(rule_text, seed=2).info["per_lr"] != exact.evaluate_rule(rule_text, seed=2).info["per_lr"]
    again = tiny(lr_grid=[0.1], exact_random=True).evaluate_rule(rule_text, seed=2)
    assert again.info["per_lr"] == exact.evaluate_rule(rule_text, seed=2).info["per_lr"]
    spec = exact.spec()
    assert create_evaluator(spec.pop("name"), **spec).spec() == exact.spec()
    with pytest.raises(ConfigError, match="option 'exact_random' must be true or false, got 'yes'"):
        tiny(exact_random="yes")


def test_evaluator_pickles_without_its_data_and_rebuilds_from_its_spec():
    evaluator = tiny(lr_grid=[0.1])
    before = evaluator.evaluate_rule("adam", seed=1)
    assert evaluator._data is not None
    copy = pickle.loads(pickle.dumps(evaluator))
    assert copy._data is None and len(pickle.dumps(evaluator)) < 2000
    assert copy.evaluate_rule("adam", seed=1).info["per_lr"] == before.info["per_lr"]
    spec = evaluator.spec()
    rebuilt = create_evaluator(spec.pop("name"), **spec)
    assert isinstance(rebuilt, OptimizerEvaluator) and rebuilt.spec() == evaluator.spec()


def test_default_child_is_a_small_convnet_on_mnist5k():
    evaluator = OptimizerEvaluator(lr_grid=[0.01], steps=15, threads=1)
    assert evaluator.data.input_shape == (1, 28, 28)
    torch.manual_seed(0)
    child = create_child("convnet", (1, 28, 28), 10)
    assert sum(p.numel() for p in child.parameters()) < 10_000
    assert evaluator.evaluate_rule("adam").metrics["valid_acc"] > 30


def test_bad_options_and_candidates_are_config_errors():
    for options, message in (({"steps": 0}, "steps must be a positive integer"),
                             ({"lr_grid": []}, "lr_grid must be a non-empty list"),
                             ({"lr_grid": [0.1, -1]}, "lr_grid must be"),
                             ({"lr_grid": [0.1, 1e300]}, r"lr_grid must be .* numbers in \(0, 1e\+06\]"),
                             ({"divergence_loss": 0}, "divergence_loss")):
        with pytest.raises(ConfigError, match=message):
            tiny(**options)
    with pytest.raises(ConfigError, match="unknown child network 'resnet'"):
        tiny(network="resnet")  # at construction: before a study stores anything
    with pytest.raises(ConfigError, match=r"child network 'mlp': unknown option\(s\) width \(accepted: hidden\)"):
        tiny(network_options={"width": 3})
    for options, message in (({"hidden": [-3]}, r"^child network 'mlp': hidden must be integers >= 1, got \[-3\]"),
                             ({"hidden": "64"}, r"^child network 'mlp': hidden must be integers >= 1, got '64'")):
        evaluator = tiny(network_options=options)  # a value: checked when the data's shape is known
        with pytest.raises(ConfigError, match=message):
            _ = evaluator.data
        assert evaluator._data is None  # nothing kept: the same error next time
    for kernel_size in (1, 2, 4, 5):  # even kernels change the maps' size: the classifier still fits
        child = create_child("convnet", (1, 28, 28), 10, channels=[4, 4], kernel_size=kernel_size)
        assert child(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_child_network_that_cannot_take_the_images_is_a_config_error_before_training():
    def needs_rgb(input_shape, num_classes):
        return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(num_classes))

    CHILD_NETWORKS.register("needs_rgb", needs_rgb)
    try:
        evaluator = tiny(network="needs_rgb")
        with pytest.raises(ConfigError, match=r"^child network 'needs_rgb' with options \{\} cannot take digits "
                                              r"images: .*expected input\[1, 1, 8, 8\] to have 3 channels"):
            _ = evaluator.data
    finally:
        CHILD_NETWORKS.unregister("needs_rgb")
    with pytest.raises(ConfigError, match="not a candidate of the optimizer_rules space"):
        rule_of_candidate({"edge": "conv"})
    assert rule_of_candidate(OptimizerRulesSpace(2).candidate_of(rule("powersign"))) == rule("powersign")


def test_a_step_that_raises_is_that_learning_rate_diverging():
    class Overflowing(torch.optim.SGD):
        def step(self, closure=None):
            if self.param_groups[0]["lr"] > 0.05:
                raise RuntimeError("value cannot be converted to type float without overflow")
            return super().step(closure)

    measurement = tiny().evaluate_optimizer(lambda params, lr, seed, steps: Overflowing(params, lr=lr))
    per_lr = {d["lr"]: d for d in measurement.info["per_lr"]}
    assert per_lr[0.1]["diverged"] == ("the step failed at step 1: value cannot be converted to type float "
                                       "without overflow")
    assert per_lr[0.01]["diverged"] is None and measurement.metrics["best_lr"] == 0.01


@pytest.mark.parametrize("options, message", [
    ({"seed": -5}, r"seed must be an integer in \[0, 2\*\*63\), got -5"),
    ({"seed": 2 ** 64}, r"seed must be an integer in \[0, 2\*\*63\)"),
    ({"schedule": [[0, 1.5]]}, "option 'schedule' must be a list of lists of integers or null, got"),
    ({"schedule": [[0, True]]}, "option 'schedule' must be"), ({"schedule": [[0, float("inf")]]}, "'schedule' must be"),
    ({"divergence_loss": True}, "option 'divergence_loss' must be a finite number, got True"),
    ({"divergence_loss": float("inf")}, "option 'divergence_loss' must be a finite number, got inf"),
    ({"divergence_loss": -1.0}, "divergence_loss must be a positive number, got -1.0"),
])
def test_evaluator_options_are_checked_when_it_is_made(options, message):
    with pytest.raises(ConfigError, match=message):
        tiny(**options)


@pytest.mark.parametrize("grid", [[], [0.0], [1e300], [-1]])
def test_a_learning_rate_grid_given_for_one_rule_is_checked_as_the_evaluator_s(grid):
    with pytest.raises(ConfigError, match=r"lr_grid must be a non-empty list of numbers in \(0, 1e\+06\]"):
        tiny().evaluate_rule("adam", lr_grid=grid)
