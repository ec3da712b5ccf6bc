"""Every registered agent honours the agent contract, on a toy space and on NAS-Bench-201."""
import pytest

from rlnas.agents import agent_class, create_agent, list_agents
from rlnas.errors import ConfigError
from rlnas.spaces import create_space
from rlnas.testing.agent_contract import check_agent_contract, conv3x3_count
from rlnas.testing.toy import ToyEvaluator

TOY = ToyEvaluator(decisions=5, choices=4)


@pytest.mark.parametrize("agent", list_agents())
def test_contract_on_a_toy_space(agent):
    check_agent_contract(lambda space, seed: create_agent(agent, space, seed=seed), TOY.space, TOY.reward_of)


@pytest.mark.parametrize("agent", list_agents())
def test_contract_on_nb201(agent):
    space = create_space("nb201")
    check_agent_contract(lambda s, seed: create_agent(agent, s, seed=seed), space, conv3x3_count, batches=4)


@pytest.mark.parametrize("agent", list_agents())
def test_config_is_documented_and_checked(agent):
    cls = agent_class(agent)
    assert cls.name == agent and cls.__doc__
    config = cls.Config()
    assert cls.Config.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown option"):
        cls.Config.from_dict({"no_such_field": 1})
