"""Contract every agent must honour; call :func:`check_agent_contract` from a test.

It checks that proposals are valid and JSON-able, that failed trials (reward ``None``) are
accepted, that the same seed gives the same run, and that a ``state_dict`` stored as a
checkpoint (:mod:`rlnas.study.checkpoint`) and loaded back continues the run exactly.
"""
from __future__ import annotations

import json
from collections.abc import Callable

from rlnas.agents.base import Agent
from rlnas.spaces.base import Candidate, Space

AgentFactory = Callable[[Space, int], Agent]


def drive(agent: Agent, reward: Callable[[Candidate], float | None], batches: int) -> list[str]:
    """Run ``batches`` ask/tell rounds of ``agent.batch_size`` proposals; return the keys asked."""
    keys = []
    for _ in range(batches):
        proposals = agent.ask(agent.batch_size)
        keys += [agent.space.key(p.candidate) for p in proposals]
        agent.tell([(p, reward(p.candidate)) for p in proposals])
    return keys


def rewards_of_search(agent: Agent, reward: Callable[[Candidate], float], trials: int) -> list[float]:
    """Ask/tell at least ``trials`` candidates in batches of ``agent.batch_size``; the rewards in order."""
    rewards: list[float] = []
    while len(rewards) < trials:
        proposals = agent.ask(agent.batch_size)
        batch = [reward(p.candidate) for p in proposals]
        agent.tell(list(zip(proposals, batch)))
        rewards += batch
    return rewards


def conv3x3_count(candidate: Candidate) -> float:
    """A toy reward on the NB201 space: the number of 3x3 convolutions (optimum: all six)."""
    return float(sum(op == "nor_conv_3x3" for op in candidate.values()))


def roundtrip_state(agent: Agent) -> dict:
    """``agent.state_dict()`` after a trip through the study's checkpoint encoding (no pickle)."""
    from rlnas.study import checkpoint

    return checkpoint.decode(checkpoint.encode(agent.state_dict()))


def check_agent_contract(factory: AgentFactory, space: Space, reward: Callable[[Candidate], float | None],
                         batches: int = 8) -> None:
    """Assert the agent contract for agents built by ``factory(space, seed)``."""
    agent = factory(space, 0)
    assert agent.batch_size >= 1
    proposals = agent.ask(3)
    assert len(proposals) == 3, "ask(n) must return n proposals"
    for p in proposals:
        space.validate(p.candidate)
        json.dumps(p.info)
    agent.tell([(proposals[0], None)] + [(p, reward(p.candidate)) for p in proposals[1:]])

    first, second = factory(space, 1), factory(space, 1)
    assert drive(first, reward, batches) == drive(second, reward, batches), "same seed must give the same run"

    original = factory(space, 2)
    drive(original, reward, batches)
    restored = factory(space, 99)
    restored.load_state_dict(roundtrip_state(original))
    assert drive(original, reward, batches) == drive(restored, reward, batches), \
        "a restored state_dict must continue the run exactly"
