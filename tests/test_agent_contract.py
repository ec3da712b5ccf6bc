"""Every registered agent honours the agent contract, on a toy space and on NAS-Bench-201."""
import numpy as np
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


@pytest.mark.parametrize("agent", list_agents())
def test_bad_input_to_ask_tell_and_load_state_dict_is_a_one_line_config_error(agent):
    a = create_agent(agent, TOY.space, seed=0)
    assert a.ask(0) == []
    for n in (-1, "2", 1.0, True):
        with pytest.raises(ConfigError, match=r"\.ask: n must be an integer >= 0"):
            a.ask(n)
    proposal = a.ask(1)[0]
    for reward in ("0.5", [0.5], True):
        with pytest.raises(ConfigError, match=r"\.tell: a reward is a real number or None"):
            a.tell([(proposal, reward)])
    with pytest.raises(ConfigError, match=r"\.tell takes \(proposal, reward\) pairs"):
        a.tell([proposal])
    for results in (5, "pairs", {"a": 1.0}):  # 5 was a TypeError ('int' object is not iterable)
        with pytest.raises(ConfigError, match=r"\.tell takes a list of \(proposal, reward\) pairs, got"):
            a.tell(results)
    a.tell([(proposal, None)])  # a failure is still told as None
    twins = [create_agent(agent, TOY.space, seed=3) for _ in range(2)]
    for _ in range(12):  # a generator of results is told like a list
        proposals = [t.ask(1)[0] for t in twins]
        assert proposals[0].candidate == proposals[1].candidate
        reward = TOY.reward_of(proposals[0].candidate)
        twins[0].tell([(proposals[0], reward)])
        twins[1].tell(pair for pair in [(proposals[1], reward)])
    fresh = create_agent(agent, TOY.space, seed=0)
    fresh.load_state_dict(a.state_dict())
    if a.state_dict():  # an agent with state refuses a dict it did not write
        with pytest.raises(ConfigError, match=r"\.load_state_dict: not a state this agent saved"):
            fresh.load_state_dict({"unrelated": 1})


def _run(agent, rounds: int) -> list[str]:
    keys = []
    for _ in range(rounds):
        proposals = agent.ask(agent.batch_size)
        agent.tell([(p, TOY.reward_of(p.candidate)) for p in proposals])
        keys += [TOY.space.key(p.candidate) for p in proposals]
    return keys


@pytest.mark.parametrize("agent", ["ppo", "reinforce", "l2nas", "evolution"])
def test_a_saved_state_stays_what_it_was_while_the_agent_goes_on(agent):
    # torch's state_dict shares live tensors: the state saved here must not follow the agent's later updates
    a = create_agent(agent, TOY.space, seed=1)
    _run(a, 4)
    saved = a.state_dict()
    after = _run(a, 4)
    b = create_agent(agent, TOY.space, seed=1)
    b.load_state_dict(saved)
    assert _run(b, 4) == after


def test_an_incomplete_registered_agent_is_a_one_line_error():
    from rlnas.agents import AGENTS, Agent, register_agent

    class Half(Agent):
        name = "half"

        def ask(self, n=1):
            return []

    register_agent("half", Half)
    register_agent("not_an_agent", dict)
    try:
        with pytest.raises(ConfigError, match="agent 'half' \\(Half\\) does not implement load_state_dict, "
                                              "state_dict, tell"):
            create_agent("half", TOY.space)
        with pytest.raises(ConfigError, match="is not a subclass of rlnas.agents.Agent"):
            create_agent("not_an_agent", TOY.space)
    finally:
        for name in ("half", "not_an_agent"):
            AGENTS.unregister(name)


@pytest.mark.parametrize("agent, option", [("ppo", "lr"), ("reinforce", "lr"), ("l2nas", "actor_lr"),
                                           ("evolution", "population_size")])
def test_numpy_numbers_are_taken_as_python_ones(agent, option):
    """np.float32(0.1) was refused by ppo and reinforce ('lr must be a number') and kept as a NumPy
    number by l2nas; every agent takes NumPy's numbers as the Python numbers they are."""
    default = getattr(agent_class(agent).Config(), option)
    value = np.float32(default) if isinstance(default, float) else np.int64(default)
    config = create_agent(agent, TOY.space, {option: value}, seed=0).config
    assert getattr(config, option) == pytest.approx(default, rel=1e-6)
    assert type(getattr(config, option)) is type(default)
