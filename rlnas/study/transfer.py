"""Policy transfer: which studies an agent may start from (``--init-from``, ``Study.init_from``)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rlnas.agents import Agent, agent_class, create_agent
from rlnas.errors import ConfigError, RlnasError
from rlnas.spaces import Space
from rlnas.store import StudyRecord

if TYPE_CHECKING:
    from rlnas.study._study import Study


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


def check_transfer(source: Study, space: Space, agent: str, config: Mapping[str, Any] | None, seed: int,
                   device: str = "cpu") -> None:
    """:func:`check_transfer_source`, then that ``source`` has a finished trial and that its agent's state
    loads into an agent of these options (a throwaway one): what :meth:`Study.init_from` will do, checked
    before a new study is stored."""
    transfer_policy(source, space, agent, create_agent(agent, space, config, seed=seed, device=device))


def transfer_policy(source: Study, space: Space, agent: str, into: Agent) -> None:
    """Load into ``into`` (an agent ``agent`` of ``space``) what ``source``'s agent learned: checked by
    :func:`check_transfer_source`, from a source with a completed trial, through :func:`load_policy_of`."""
    check_transfer_source(source.record, space, agent)
    source.rebuild()
    if source.best_trial is None:  # failed trials teach nothing: the transfer would change nothing
        raise ConfigError(f"cannot start from study {source.name!r}: it has no completed trial")
    load_policy_of(into, source)


def load_policy_of(agent: Agent, source: Study) -> None:
    """``agent.load_policy`` of ``source``'s agent state, a one-line :class:`ConfigError` when it does not fit
    (another LSTM width, another critic: a ``RuntimeError`` of torch's ``load_state_dict``)."""
    try:
        agent.load_policy(source.agent.state_dict())
    except ConfigError as exc:
        raise ConfigError(f"cannot start from study {source.name!r}: {exc}") from None
    except RlnasError:
        raise
    except (RuntimeError, KeyError, ValueError, IndexError, TypeError) as exc:
        # torch's first line only says "Error(s) in loading state_dict for LSTMController:"; the next names them
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
        reason = " ".join(lines[:2])
        raise ConfigError(f"cannot start from study {source.name!r}: its {source.record.agent} agent's state does "
                          f"not fit this one's options ({type(exc).__name__}: {reason[:300]})") from None


__all__ = ["check_transfer", "check_transfer_source", "load_policy_of", "transfer_policy"]
