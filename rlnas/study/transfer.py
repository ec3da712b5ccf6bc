"""Policy transfer: which studies an agent may start from (``--init-from``, ``Study.init_from``)."""
from __future__ import annotations

from rlnas.agents import Agent, agent_class
from rlnas.errors import ConfigError
from rlnas.spaces import Space
from rlnas.store import StudyRecord


def check_transfer_source(source: StudyRecord, space: Space, agent: str) -> None:
    """Raise :class:`ConfigError` unless ``agent`` can start from ``source`` on ``space``: the agent
    transfers something, and ``source`` searched the same space with the same agent."""
    if agent_class(agent).load_policy is Agent.load_policy:
        raise ConfigError(f"agent {agent!r} has nothing to transfer: --init-from is not supported")
    if source.fingerprint != space.fingerprint:
        raise ConfigError(f"cannot start from study {source.name!r}: it searched space {source.space_name!r} "
                          f"({source.fingerprint}), this study searches {space.name!r} ({space.fingerprint})")
    if source.agent != agent:
        raise ConfigError(f"cannot start from study {source.name!r}: it used agent {source.agent!r}, not {agent!r}")


__all__ = ["check_transfer_source"]
