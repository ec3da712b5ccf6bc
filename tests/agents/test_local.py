"""Local search: contract, neighbourhoods, climbing, restarts at local optima, no repeats."""
from __future__ import annotations

import pytest

from rlnas.agents import create_agent
from rlnas.agents.base import Proposal
from rlnas.agents.local import LocalAgent
from rlnas.errors import ConfigError
from rlnas.spaces import create_space
from rlnas.spaces.base import Categorical, Space
from rlnas.testing import ToyEvaluator
from rlnas.testing.agent_contract import (
    check_agent_contract,
    conv3x3_count,
    drive,
    roundtrip_state,
)


@pytest.mark.parametrize("move", ["best", "first"])
def test_contract(move: str) -> None:
    toy = ToyEvaluator(4, 3)
    check_agent_contract(lambda space, seed: LocalAgent(space, {"move": move, "initial_random": 3}, seed=seed),
                         toy.space, toy.reward_of, batches=30)
    check_agent_contract(lambda space, seed: create_agent("local", space, {"move": move}, seed=seed),
                         create_space("nb201"), conv3x3_count, batches=40)


def test_neighbours_differ_in_exactly_one_decision() -> None:
    space = Space("s", [Categorical("a", (0, 1, 2)), Categorical("b", ("x", "y")), Categorical("c", (0, 1, 2, 3))])
    agent = LocalAgent(space, seed=0)
    neighbours = agent.neighbours((1, 0, 3))
    assert len(neighbours) == len(set(neighbours)) == (3 - 1) + (2 - 1) + (4 - 1)
    assert all(sum(a != b for a, b in zip(nb, (1, 0, 3))) == 1 for nb in neighbours)


@pytest.mark.parametrize("move", ["best", "first"])
def test_climbs_a_unimodal_reward_to_its_optimum_without_repeats(move: str) -> None:
    toy = ToyEvaluator(6, 5)  # 15,625 architectures; the reward grows with every matching decision
    optimum = toy.space.key(toy.optimum)
    for seed in range(3):
        keys = drive(LocalAgent(toy.space, {"move": move}, seed=seed), toy.reward_of, 250)
        assert optimum in keys
        assert len(set(keys)) == len(keys)  # never evaluated twice


def test_restarts_at_a_local_optimum() -> None:
    # Two decisions of 3 choices: (0, 0) is a strict local optimum (every neighbour is worse),
    # (2, 2) the global one. Starting at (0, 0), the whole neighbourhood is worse: restart.
    space = Space("trap", [Categorical("a", (0, 1, 2)), Categorical("b", (0, 1, 2))])
    reward = {(0, 0): 5.0, (2, 2): 10.0}
    agent = LocalAgent(space, {"initial_random": 1}, seed=0)
    agent.tell([(Proposal(space.from_indices((0, 0))), 5.0)])  # told without being asked: still known
    assert agent.centre == ((0, 0), 5.0) and len(agent.queue) == 4
    origins = []
    for _ in range(4):
        (p,) = agent.ask()
        origins.append(p.info["origin"])
        agent.tell([(p, reward.get(space.indices(p.candidate), 1.0))])
    assert origins == ["neighbour"] * 4 and agent.restarts == 1 and agent.centre is None
    (p,) = agent.ask()
    assert p.info["origin"] == "restart" and space.indices(p.candidate) != (0, 0)


def test_first_improvement_moves_at_once() -> None:
    toy = ToyEvaluator(4, 5)
    agent = LocalAgent(toy.space, {"move": "first", "initial_random": 1}, seed=1)
    drive(agent, toy.reward_of, 1)
    centre = agent.centre
    while agent.centre == centre:
        (p,) = agent.ask()
        agent.tell([(p, toy.reward_of(p.candidate))])
        if agent.centre != centre:
            assert agent.centre[0] == toy.space.indices(p.candidate) and agent.centre[1] > centre[1]
    assert agent.moves == 1


def test_best_improvement_evaluates_the_whole_neighbourhood_first() -> None:
    toy = ToyEvaluator(4, 5)
    agent = LocalAgent(toy.space, {"initial_random": 1}, seed=2)
    drive(agent, toy.reward_of, 1)
    centre, n = agent.centre, len(agent.queue)
    keys = drive(agent, toy.reward_of, n)
    neighbours = {toy.space.key(toy.space.from_indices(ix)) for ix in agent.neighbours(centre[0])}
    assert set(keys) == neighbours and agent.moves == 1  # moved only once the sweep was done
    best = max(toy.reward_of(toy.space.from_key(k)) for k in neighbours)
    assert agent.centre[1] == best and best > centre[1]


def test_failed_trials_and_resume() -> None:
    toy = ToyEvaluator(4, 3)
    agent = LocalAgent(toy.space, {"initial_random": 2}, seed=0)
    proposals = agent.ask(2)
    agent.tell([(proposals[0], None), (proposals[1], toy.reward_of(proposals[1].candidate))])
    assert agent.centre is not None and agent.centre[0] == toy.space.indices(proposals[1].candidate)
    restored = LocalAgent(toy.space, {"initial_random": 2}, seed=5)
    restored.load_state_dict(roundtrip_state(agent))
    assert drive(agent, toy.reward_of, 20) == drive(restored, toy.reward_of, 20)


@pytest.mark.parametrize("bad", [{"initial_random": 0}, {"move": "steepest"}, {"initial_random": True}])
def test_bad_config(bad: dict) -> None:
    with pytest.raises(ConfigError):
        LocalAgent(ToyEvaluator().space, bad)
