"""The LSTM controller over the rule space: failed rules teach it only through ``fail_reward``."""
from __future__ import annotations

import pytest

from rlnas.agents import create_agent
from rlnas.errors import ConfigError
from rlnas.spaces.optimizer_rules import OptimizerRulesSpace

FAILING = ("pow", "div", "sub")  # half of the binary functions "diverge" in this fake task


def failing_share(agent: str, fail_reward: float | None, updates: int = 30, batch: int = 8) -> tuple[float, float]:
    """Share of 400 sampled rules that fail, before and after a fake search of ``updates`` batches."""
    space = OptimizerRulesSpace(1)
    config = {"controller": "lstm", "batch_size": batch, "fail_reward": fail_reward}
    if agent == "reinforce":
        config["lr"] = 0.05
    agent_obj = create_agent(agent, space, config, seed=0)

    def share() -> float:
        return sum(p.candidate["i1_b"] in FAILING for p in agent_obj.ask(400)) / 400

    before = share()
    for _ in range(updates):
        proposals = agent_obj.ask(batch)
        agent_obj.tell([(p, None if p.candidate["i1_b"] in FAILING else 50.0) for p in proposals])
    return before, share()


@pytest.mark.parametrize("agent", ["reinforce", "ppo"])
def test_fail_reward_teaches_the_controller_to_avoid_failing_rules(agent):
    start, end = failing_share(agent, 0.0)
    assert start > 0.4 and end < 0.1, (start, end)
    # ablation: skipping failures leaves only equal rewards, so nothing is learned
    start, end = failing_share(agent, None)
    assert end > 0.4, (start, end)


def test_fail_reward_is_checked():
    with pytest.raises(ConfigError, match=r"reinforce: fail_reward must be a number in \[-1e\+30, 1e\+30\] or null"):
        create_agent("reinforce", OptimizerRulesSpace(1), {"fail_reward": float("nan")})


def test_the_fixed_agent_takes_a_rule_by_its_name_as_by_its_written_form():
    for iterations, name in ((1, "adam"), (2, "adam"), (3, "powersign-ld")):
        space = OptimizerRulesSpace(iterations)
        by_name = create_agent("fixed", space, {"key": name}).ask(1)[0].candidate
        named = space.known()[name]
        assert by_name == named == space.from_key(space.key(named))
    with pytest.raises(ConfigError, match="has 3 iteration\\(s\\) but space 'optimizer_rules' has 1"):
        create_agent("fixed", OptimizerRulesSpace(1), {"key": "powersign-ld"})
    with pytest.raises(ConfigError, match="unknown operand .* at 'adamm'"):
        create_agent("fixed", OptimizerRulesSpace(1), {"key": "adamm"})
