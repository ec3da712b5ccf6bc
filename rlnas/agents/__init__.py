"""Search agents and their registry (``create_agent`` / ``list_agents``).

The registry maps names to ``module:Class`` paths so that listing agents or starting the
CLI does not import torch.
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from rlnas.agents.base import Agent, AgentConfig, Proposal, Result
from rlnas.errors import ConfigError
from rlnas.spaces.base import Space

AGENTS: dict[str, str] = {
    "random": "rlnas.agents.random:RandomAgent",
    "evolution": "rlnas.agents.evolution:EvolutionAgent",
    "reinforce": "rlnas.agents.reinforce:ReinforceAgent",
    "ppo": "rlnas.agents.ppo:PPOAgent",
    "l2nas": "rlnas.agents.l2nas:L2NASAgent",
    "enas": "rlnas.agents.enas:EnasAgent",
}


def register_agent(name: str, path: str) -> None:
    """Register an agent class by its ``module:Class`` path."""
    AGENTS[name] = path


def list_agents() -> list[str]:
    """Names accepted by :func:`create_agent`, sorted."""
    return sorted(AGENTS)


def agent_class(name: str) -> type[Agent]:
    """The class registered as ``name``; :class:`ConfigError` names the choices when unknown."""
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r} (choices: {', '.join(list_agents())})")
    module, _, attr = AGENTS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def create_agent(name: str, space: Space, config: Mapping[str, Any] | AgentConfig | None = None, *,
                 seed: int | None = None, device: str = "cpu") -> Agent:
    """Build agent ``name`` for ``space``."""
    return agent_class(name)(space, config, seed=seed, device=device)


__all__ = ["Agent", "AgentConfig", "Proposal", "Result", "AGENTS", "register_agent", "list_agents",
           "agent_class", "create_agent"]
