"""The agent interface: ask for proposals, tell their rewards, save and restore state.

An agent never sees the store, the CLI, a logger or the global RNG: it owns seeded
generators and everything it needs travels through ``Proposal.info`` and ``tell``.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate, Space


@dataclass(frozen=True)
class Proposal:
    """A candidate proposed by an agent, with JSON-able ``info`` the agent needs back in ``tell``."""

    candidate: Candidate
    info: dict[str, Any] = field(default_factory=dict)


Result = tuple[Proposal, "float | None"]
"""A told result: the proposal and its reward (``None`` when the evaluation failed)."""


@dataclass
class AgentConfig:
    """Base class of agent configurations (every field has a one-line docstring)."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> AgentConfig:
        """Build a config from a mapping, naming unknown fields in a :class:`ConfigError`."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for {cls.__qualname__} (known: {sorted(known)})")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return dataclasses.asdict(self)


class Agent(ABC):
    """Base class of all search agents.

    Subclasses set ``name`` and ``Config`` and implement ``ask``, ``tell``, ``state_dict``
    and ``load_state_dict``. ``batch_size`` is how many proposals the study asks for at once
    and evaluates before telling them together (1 for asynchronous agents).
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[AgentConfig]] = AgentConfig

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu"):
        self.space = space
        if config is None or isinstance(config, Mapping):
            config = self.Config.from_dict(config)
        elif not isinstance(config, self.Config):
            raise ConfigError(f"{type(self).__name__} expects a {self.Config.__qualname__}, got {type(config).__name__}")
        self.config = config
        self.seed = seed
        self.device = device

    @property
    def batch_size(self) -> int:
        """Number of proposals asked for, evaluated and told together."""
        return 1

    @abstractmethod
    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose ``n`` candidates."""

    @abstractmethod
    def tell(self, results: Sequence[Result]) -> dict[str, float]:
        """Learn from evaluated proposals; return diagnostics (name -> float)."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly where the agent is: plain Python values and tensors."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def load_policy(self, state: Mapping[str, Any]) -> None:
        """Start from what another search of the same space learned (policy transfer).

        ``state`` is that agent's :meth:`state_dict`. What is taken is up to each agent (a
        controller's weights, a population, actor and critic); this agent keeps its own seed
        and random generators. Agents that learn nothing transferable refuse.
        """
        raise ConfigError(f"agent {self.name!r} has nothing to transfer: --init-from is not supported")


def rng_state(generator: Any) -> dict[str, Any]:
    """JSON-able state of a ``numpy.random.Generator``."""
    return generator.bit_generator.state


def set_rng_state(generator: Any, state: Mapping[str, Any]) -> None:
    """Restore the state returned by :func:`rng_state`."""
    generator.bit_generator.state = dict(state)


class WeightSharingAgent(Agent):
    """Controller of a one-shot search (TuNAS, ENAS): it learns while one supernet trains.

    The weight-sharing driver (:mod:`rlnas.study._weight_sharing`) runs rounds: ``plan_round``
    says how many shared-weight steps and controller updates come next; ``train_children``
    gives the paths those shared-weight steps train; each controller update asks
    ``batch_size`` proposals, rewards them on validation minibatches and ``tell`` s them (the
    returned diagnostics are stored); ``mode`` is the architecture the search would answer now,
    recorded as a trial every ``record_every`` shared steps.
    """

    @abstractmethod
    def plan_round(self, step: int, total_steps: int, steps_per_epoch: int) -> tuple[int, int]:
        """``(shared-weight steps, controller updates)`` of the round starting at shared step ``step``."""

    @abstractmethod
    def train_children(self, n: int) -> list[Candidate]:
        """The candidates whose paths the next ``n`` shared-weight steps train."""

    @abstractmethod
    def mode(self) -> Candidate:
        """The most likely candidate under the current policy (argmax of each decision for a
        factorized controller, greedy decoding for an autoregressive one)."""
