"""Search agents and their registry (``create_agent`` / ``list_agents``).

The registry maps names to ``module:Class`` paths so that listing agents or starting the
CLI does not import torch.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlnas.agents.base import Agent, AgentConfig, Proposal, Result
from rlnas.errors import ConfigError
from rlnas.registry import Registry
from rlnas.spaces.base import Space

AGENTS: Registry[type[Agent]] = Registry("agent", {
    "random": "rlnas.agents.random:RandomAgent",
    "evolution": "rlnas.agents.evolution:EvolutionAgent",
    "reinforce": "rlnas.agents.reinforce:ReinforceAgent",
    "ppo": "rlnas.agents.ppo:PPOAgent",
    "l2nas": "rlnas.agents.l2nas:L2NASAgent",
    "local": "rlnas.agents.local:LocalAgent",
    "tunas": "rlnas.agents.tunas:TunasAgent",
    "fixed": "rlnas.agents.fixed:FixedAgent",
    "enas": "rlnas.agents.enas:EnasAgent",
})
"""Agent classes by name."""


def register_agent(name: str, target: str | type[Agent]) -> None:
    """Register an agent class (or its ``module:Class`` path)."""
    AGENTS.register(name, target)


def list_agents() -> list[str]:
    """Names accepted by :func:`create_agent`, sorted."""
    return AGENTS.list()


def agent_class(name: str) -> type[Agent]:
    """The class registered as ``name``; :class:`ConfigError` names the choices when unknown, and says
    what a registered class lacks (not an :class:`Agent`, or methods it does not implement)."""
    cls = AGENTS.get(name)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ConfigError(f"agent {name!r} is registered as {cls!r}, which is not a subclass of rlnas.agents.Agent")
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        raise ConfigError(f"agent {name!r} ({cls.__name__}) does not implement {', '.join(missing)}")
    return cls


def shares_weights(agent: str) -> bool:
    """Whether ``agent`` is a registered weight-sharing agent (TuNAS, ENAS): its study's answer is its last
    recorded trial, not the one of the highest reward (``rlnas.study.WEIGHT_SHARING_ANSWER``)."""
    from rlnas.agents.base import WeightSharingAgent

    return agent in AGENTS and issubclass(agent_class(agent), WeightSharingAgent)


def create_agent(name: str, space: Space | str, config: Mapping[str, Any] | AgentConfig | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> Agent:
    """Build agent ``name`` for ``space`` (a Space or a space's name; the agent's ``batch_size`` is
    checked: a study divides by it)."""
    if isinstance(space, str):
        from rlnas.spaces import create_space

        space = create_space(space)
    if not isinstance(space, Space):
        raise ConfigError(f"agent {name!r}: space must be a Space or a space's name, got {type(space).__name__} "
                          f"{space!r:.80}")
    agent = agent_class(name)(space, config, seed=seed, device=device)
    size = agent.batch_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"agent {name!r}: batch_size must be an integer >= 1, got {size!r}")
    return agent


__all__ = [
    "shares_weights",
    "AGENTS",
    "Agent",
    "AgentConfig",
    "Proposal",
    "Result",
    "agent_class",
    "create_agent",
    "list_agents",
    "register_agent",
]
