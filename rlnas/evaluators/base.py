"""What every evaluator returns, and the protocol it follows."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rlnas.errors import ConfigError
from rlnas.spaces.base import Candidate


@dataclass(frozen=True)
class Measurement:
    """Result of evaluating one candidate.

    ``metrics`` holds floats such as ``valid_acc`` (the search signal), ``test_acc`` (the
    number to report), ``params_m`` and ``latency_ms``; ``cost_seconds`` is the (possibly
    simulated) time the evaluation took; ``info`` holds anything else JSON-able.
    """

    metrics: Mapping[str, float]
    cost_seconds: float = 0.0
    info: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """Turns a candidate into a :class:`Measurement`.

    ``evaluate`` is the only required method. ``seed`` makes a noisy evaluation reproducible: the
    study passes a seed derived from its own seed and the trial's slot.

    Optional: ``spec()`` returns the JSON-able ``{"name": ..., **options}`` that ``create_evaluator``
    turns back into an equal evaluator (used by resume; without it the study stores
    ``{"name": <class name>}``). ``metrics``, the names of the metrics every measurement reports: a
    study refuses a reward that reads another metric before anything runs or is stored
    (:func:`check_reward_metrics`). ``prepare()`` and ``data_fingerprint()``: see docs/extending.md.
    """

    def evaluate(self, candidate: Candidate, *, budget: float | None = None, seed: int | None = None) -> Measurement:
        ...

    def spec(self) -> dict[str, Any]:
        ...


def check_reward_metrics(reads: Iterable[str], evaluator: Any) -> None:
    """A :class:`ConfigError` when a reward reads a metric (``reads``) that ``evaluator`` declares it
    does not report (its ``metrics``); nothing is checked for an evaluator that declares none."""
    declared = getattr(evaluator, "metrics", None)
    if declared is None:
        return
    missing = [m for m in reads if m not in declared]
    if missing:
        name = getattr(evaluator, "name", type(evaluator).__name__)
        raise ConfigError(f"the reward reads metric(s) {', '.join(map(repr, missing))}, which evaluator {name!r} "
                          f"does not report (it reports: {', '.join(declared)})")


def reduce_by_options(evaluator: Any, base: type, options: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """``__reduce__`` of a table evaluator (class ``base``): pickled as its options only, the table is loaded
    again on the other side (a worker process). A subclass stays that subclass there, with the attributes
    it added (its own options) set again, without calling its ``__init__``."""
    if type(evaluator) is base:
        return base, options
    inherited = set(vars(base(*options)))
    added = {k: v for k, v in vars(evaluator).items() if k not in inherited}
    return _rebuilt, (type(evaluator), base, options, added)


def _rebuilt(cls: type, base: type, options: tuple[Any, ...], added: dict[str, Any]) -> Any:
    evaluator = cls.__new__(cls)
    vars(evaluator).update(added)  # first: the base's __init__ may call the subclass's methods, which read them
    base.__init__(evaluator, *options)
    return evaluator
