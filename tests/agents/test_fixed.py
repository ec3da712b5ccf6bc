"""The fixed agent proposes the one architecture it is given."""
import pytest

from rlnas.agents import create_agent
from rlnas.errors import ConfigError
from rlnas.spaces import create_space


def test_proposes_the_given_key_and_learns_nothing() -> None:
    space = create_space("proxyless")
    key = space.key(space.known()["proxylessnas_mobile"])
    agent = create_agent("fixed", space, {"key": key}, seed=0)
    proposals = agent.ask(3)
    assert [space.key(p.candidate) for p in proposals] == [key] * 3
    assert agent.tell([(proposals[0], 1.0)]) == {} and agent.state_dict() == {}
    assert create_agent("fixed", space).ask(1)[0].candidate == space.from_indices([0] * len(space.sizes))


def test_a_bad_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="fixed: .*proxyless key"):
        create_agent("fixed", create_space("proxyless"), {"key": "k3|nonsense"})
    with pytest.raises(ConfigError, match="option 'key' of FixedConfig must be a string or null"):
        create_agent("fixed", create_space("proxyless"), {"key": 3})


def test_reuse_repeats_is_refused_before_anything_is_stored(tmp_path) -> None:
    from rlnas.cli import main
    from rlnas.study import create_study

    with pytest.raises(ConfigError, match="agent 'fixed' proposes one candidate"):
        create_study(space="nb201", agent="fixed", reuse_repeats=True)
    database = tmp_path / "s.db"
    assert main(["search", "--space", "nb201", "--agent", "fixed", "--reuse-repeats", "--trials", "5",
                 "--no-progress", "--storage", f"sqlite:///{database}"]) == 2
    assert not database.exists()


def test_a_key_that_is_a_json_list_may_be_given_as_the_list():
    """--set parses JSON: key='["0000","gcn","gcn","gcn","sage"]' arrived as a list and was refused."""
    space = create_space("nbgraph")
    wanted = ["0000", "gcn", "gcn", "gcn", "sage"]
    agent = create_agent("fixed", space, {"key": wanted})
    assert agent.config.key == '["0000","gcn","gcn","gcn","sage"]'
    assert list(agent.ask(1)[0].candidate.values())[-4:] == wanted[1:]
