"""Policy transfer: a study can start from another study's agent (``--init-from``)."""
import pytest

from rlnas import create_study, load_study
from rlnas.agents import Agent, agent_class, list_agents
from rlnas.agents.base import WeightSharingAgent
from rlnas.errors import ConfigError
from rlnas.evaluators.tabular import NB201Evaluator

TRANSFERABLE = [a for a in list_agents() if agent_class(a).load_policy is not Agent.load_policy
                and not issubclass(agent_class(a), WeightSharingAgent)]  # those need a supernet (own tests)


def test_every_learning_agent_can_transfer():
    assert set(TRANSFERABLE) >= {"evolution", "reinforce", "ppo", "l2nas"}


@pytest.mark.parametrize("agent", TRANSFERABLE)
def test_transfer_starts_from_the_source_policy_and_survives_a_crash(agent, sqlite_url):
    create_study(space="nb201", agent=agent, evaluator=NB201Evaluator("cifar10"), seed=0, name="src",
                 storage=sqlite_url).optimize(150)
    fresh = create_study(space="nb201", agent=agent, evaluator=NB201Evaluator("cifar100"), seed=1, name="plain",
                         storage=sqlite_url)
    warm = create_study(space="nb201", agent=agent, evaluator=NB201Evaluator("cifar100"), seed=1, name="warm",
                        storage=sqlite_url)
    warm.init_from(load_study("src", sqlite_url))
    assert warm.settings["init_from"] == "src"
    fresh.optimize(30)
    warm.optimize(30)
    keys = lambda study: [t.key for t in study.completed_trials]  # noqa: E731
    assert keys(fresh) != keys(warm), "the transferred policy must change what is proposed"
    crashed = create_study(space="nb201", agent=agent, evaluator=NB201Evaluator("cifar100"), seed=1, name="warm2",
                           storage=sqlite_url, checkpoint_every=1000)
    crashed.init_from(load_study("src", sqlite_url))
    crashed.optimize(12)
    resumed = load_study("warm2", sqlite_url)
    resumed.optimize(30)
    assert keys(resumed) == keys(warm), "resume must restart from the transferred state"


def test_transfer_checks_space_and_agent(sqlite_url):
    from rlnas.testing.toy import ToyEvaluator

    toy = ToyEvaluator()
    source = create_study(space=toy.space, agent="evolution", evaluator=toy, name="toy", storage=sqlite_url)
    source.optimize(5)
    target = create_study(space="nb201", agent="evolution", evaluator=NB201Evaluator(), name="t", storage=sqlite_url)
    with pytest.raises(ConfigError, match="searched space"):
        target.init_from(load_study("toy", sqlite_url))
    other = create_study(space="nb201", agent="reinforce", evaluator=NB201Evaluator(), name="o", storage=sqlite_url)
    other.optimize(3)
    with pytest.raises(ConfigError, match="used agent 'reinforce'"):
        target.init_from(load_study("o", sqlite_url))
    random_study = create_study(space="nb201", agent="random", evaluator=NB201Evaluator(), name="r",
                                storage=sqlite_url)
    with pytest.raises(ConfigError, match="nothing to transfer"):
        random_study.agent.load_policy({})


def test_a_source_whose_trials_all_failed_is_refused(sqlite_url):
    # its failed trials counted as finished: the transfer went through and changed nothing
    failed = create_study(space="nb201", agent="reinforce", evaluator=NB201Evaluator(), name="f", storage=sqlite_url)
    for _ in range(3):
        failed.tell(failed.ask(), None)
    failed.close()
    target = create_study(space="nb201", agent="reinforce", evaluator=NB201Evaluator(), name="t", storage=sqlite_url)
    with pytest.raises(ConfigError, match="cannot start from study 'f': it has no completed trial"):
        target.init_from(load_study("f", sqlite_url))
