"""How ``rlnas search`` turns its reward flags into a stored reward spec."""
from __future__ import annotations

from rlnas.cli._main import build_parser
from rlnas.cli.search import reward_spec
from rlnas.evaluators.supernet import SupernetEvaluator


def _reward(*argv: str, **evaluator_options: object) -> object:
    args = build_parser().parse_args(["search", "--space", "proxyless", "--agent", "tunas", "--evaluator", "supernet",
                                      *argv])
    return reward_spec(args, SupernetEvaluator("proxyless", "digits", **evaluator_options))


def test_a_cost_aware_reward_penalises_the_cost_the_evaluator_computes():
    spec = _reward("--reward", "abs", "--target", "100", "--eval-option", "cost=flops", cost="flops")
    assert spec == {"name": "abs", "metric": "supernet_acc", "cost": "flops_m", "target": 100.0, "beta": -7.0}
    assert _reward("--reward", "abs", "--target", "100", "--cost", "flops", cost="flops")["cost"] == "flops_m"
    assert _reward("--reward", "abs", "--target", "12")["cost"] == "latency_ms"


def test_an_evaluator_computing_a_cost_of_its_own_leaves_the_rewards_cost_to_the_flags():
    # a plugin evaluator whose spec has cost 'energy' made a KeyError traceback
    class Energy:
        default_reward = "valid_acc"

        def spec(self) -> dict:
            return {"name": "energy", "cost": "energy"}

    args = build_parser().parse_args(["search", "--reward", "abs", "--target", "10"])
    assert reward_spec(args, Energy())["cost"] == "latency_ms"
