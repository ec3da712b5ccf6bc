"""The agent interface: ask for proposals, tell their rewards, save and restore state.

An agent never sees the store, the CLI, a logger or the global RNG: it owns seeded
generators and everything it needs travels through ``Proposal.info`` and ``tell``.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import numbers
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rlnas.checks import check_device, check_seed, check_value
from rlnas.errors import ConfigError, InvalidCandidate, RlnasError
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
    """Base class of agent configurations (every field has a one-line docstring).

    Every field is checked against its declared type: a subclass's ``__post_init__`` (its range
    checks) is wrapped so that values are normalised first (``5.0`` -> ``5`` for an int), then its
    own messages come, then every field's type is checked; a raw ``TypeError``/``ValueError`` from
    the subclass (a string compared with a number) is replaced by the message naming the field.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None:
            cls.__post_init__ = _with_type_checks(cls, own)  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        self._check_types()

    def _check_types(self, *, strict: bool = True) -> None:
        """Check every field against its annotation, normalising values that fit (``5.0`` -> ``5`` for
        an int); with ``strict=False`` values that do not fit are left for a later check."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                checked = check_value(value, hints.get(f.name, Any), f"option {f.name!r} of {type(self).__qualname__}")
            except ConfigError:
                if strict:
                    raise
                continue
            if checked is not value:
                object.__setattr__(self, f.name, checked)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> AgentConfig:
        """Build a config from a mapping, naming unknown fields and ill-typed values in a :class:`ConfigError`."""
        if values is not None and not isinstance(values, Mapping):
            raise ConfigError(f"{cls.__qualname__} options must be a JSON object, got {type(values).__name__}")
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in set(values) - known)
        if unknown:
            raise ConfigError(f"unknown option(s) {unknown} for {cls.__qualname__} (known: {sorted(known)})")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return dataclasses.asdict(self)


def _with_type_checks(cls: type[AgentConfig], post_init: Callable[[Any], None]) -> Callable[[Any], None]:
    """``post_init`` followed by the type check of every field (only in the outermost class's call)."""
    @functools.wraps(post_init)
    def checked(self: AgentConfig) -> None:
        self._check_types(strict=False)
        try:
            post_init(self)
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError, OverflowError):
            self._check_types()  # names the field whose type broke the subclass's checks
            raise
        outermost = next(k for k in type(self).__mro__ if "__post_init__" in vars(k))
        if outermost is cls:
            self._check_types()
    return checked


class Agent(ABC):
    """Base class of all search agents.

    Subclasses set ``name`` and ``Config`` and implement ``ask``, ``tell``, ``state_dict``
    and ``load_state_dict``. ``batch_size`` is how many proposals the study asks for at once
    and evaluates before telling them together (1 for asynchronous agents). Every subclass's
    ``ask``, ``tell`` and ``load_state_dict`` check their input the same way (:func:`_checked`):
    bad input is a one-line :class:`ConfigError`, and ``ask(0)`` is ``[]``; a state given or taken is
    a copy, so a saved state stays what it was while the agent goes on.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[AgentConfig]] = AgentConfig

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every agent's ask / tell / state_dict / load_state_dict behave the same way (see _checked).
        super().__init_subclass__(**kwargs)
        for method in ("ask", "tell", "state_dict", "load_state_dict"):
            if method in cls.__dict__:
                setattr(cls, method, _checked(method, cls.__dict__[method]))

    def __init__(self, space: Space, config: AgentConfig | Mapping[str, Any] | None = None, *,
                 seed: int | None = None, device: str = "cpu"):
        self.space = space
        if config is None or isinstance(config, Mapping):
            config = self.Config.from_dict(config)
        elif not isinstance(config, self.Config):
            raise ConfigError(f"{type(self).__name__} expects a {self.Config.__qualname__}, "
                              f"got {type(config).__name__}")
        self.config = config
        self.seed = None if seed is None else check_seed(seed)
        self.device = check_device(device)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space.name!r}, seed={self.seed!r})"

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


def _checked(method: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (an agent's ``ask``, ``tell`` or ``load_state_dict``) behind one-line checks of its input:
    ``ask(n)`` takes an integer n >= 0 (0: no proposal); ``tell`` takes (proposal, reward) pairs whose
    reward is a real number or None (NaN and infinities count as failures, as before); a state that is
    not one this agent saved is a :class:`ConfigError` instead of a ``KeyError`` deep inside; ``state_dict``
    returns, and ``load_state_dict`` takes, a deep copy (torch's ``state_dict`` shares the live tensors:
    a state saved, then restored after the agent went on, would not continue identically)."""
    if getattr(function, "_checked", False) or getattr(function, "__isabstractmethod__", False):
        return function

    @functools.wraps(function)
    def ask(self: Agent, n: int = 1) -> list[Proposal]:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(f"{type(self).__name__}.ask: n must be an integer >= 0, got {n!r}")
        return [] if n == 0 else _checked_proposals(self, function(self, n))

    @functools.wraps(function)
    def tell(self: Agent, results: Sequence[Result]) -> dict[str, float]:
        if isinstance(results, (Mapping, str, bytes)) or not isinstance(results, Iterable):
            raise ConfigError(f"{type(self).__name__}.tell takes a list of (proposal, reward) pairs, got "
                              f"{type(results).__name__} {results!r:.80}")
        results = list(results)  # a generator is read once, here
        for item in results:
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], Proposal)):
                raise ConfigError(f"{type(self).__name__}.tell takes (proposal, reward) pairs, got {item!r}")
            reward = item[1]
            if reward is not None and (isinstance(reward, bool) or not isinstance(reward, numbers.Real)):
                raise ConfigError(f"{type(self).__name__}.tell: a reward is a real number or None, got {reward!r}")
        return _checked_diagnostics(self, function(self, results))

    @functools.wraps(function)
    def state_dict(self: Agent) -> dict[str, Any]:
        return copy.deepcopy(function(self))

    @functools.wraps(function)
    def load_state_dict(self: Agent, state: Mapping[str, Any]) -> None:
        try:
            function(self, copy.deepcopy(state))
        except RlnasError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as err:
            raise ConfigError(f"{type(self).__name__}.load_state_dict: not a state this agent saved "
                              f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None

    checked = {"ask": ask, "tell": tell, "state_dict": state_dict, "load_state_dict": load_state_dict}[method]
    checked._checked = True  # type: ignore[attr-defined]
    return checked


def _checked_proposals(agent: Agent, proposals: Any) -> list[Proposal]:
    """What an agent's ``ask`` returned, as the study needs it: a list of :class:`Proposal` whose
    candidate is one of the space (a plain mapping of choices is taken and checked) and whose ``info``
    a store can keep; else a one-line :class:`ConfigError` naming the agent."""
    from rlnas.store.base import as_stored

    where = f"{type(agent).__name__}.ask"
    if not isinstance(proposals, (list, tuple)):
        raise ConfigError(f"{where} must return a list of Proposal, got {type(proposals).__name__}")
    checked = []
    for proposal in proposals:
        if not isinstance(proposal, Proposal):
            raise ConfigError(f"{where} must return Proposal objects (rlnas.Proposal(candidate, info)), "
                              f"got {type(proposal).__name__} {proposal!r}")
        if not isinstance(proposal.candidate, Candidate):
            if not isinstance(proposal.candidate, Mapping):
                raise ConfigError(f"{where}: a proposal's candidate must be a Candidate or a mapping of "
                                  f"choices, got {type(proposal.candidate).__name__}")
            try:
                proposal = Proposal(agent.space.candidate(proposal.candidate), proposal.info)
            except InvalidCandidate as exc:
                raise ConfigError(f"{where} proposed a candidate that is not one of the space: {exc}") from None
        if not isinstance(proposal.info, Mapping):
            raise ConfigError(f"{where}: a proposal's info must be a dict, got {type(proposal.info).__name__}")
        try:
            as_stored(proposal.info)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: a proposal's info must be JSON, as a store keeps it ({exc})") from None
        checked.append(proposal)
    return checked


def _checked_diagnostics(agent: Agent, diagnostics: Any) -> dict[str, float]:
    """What an agent's ``tell`` returned as ``name -> float`` (NumPy numbers become floats), else a
    one-line :class:`ConfigError` naming the agent and the value."""
    if diagnostics is None:
        return {}
    if not isinstance(diagnostics, Mapping):
        raise ConfigError(f"{type(agent).__name__}.tell must return a dict of diagnostics (name -> number), "
                          f"got {type(diagnostics).__name__}")
    values = {}
    for name, value in diagnostics.items():
        if not isinstance(name, str) or isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"{type(agent).__name__}.tell: diagnostic {name!r} must be a number under a str "
                              f"name, got {type(value).__name__} {value!r}")
        values[name] = float(value)
    return values


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
