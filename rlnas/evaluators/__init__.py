"""Evaluators and their registry (``create_evaluator`` / ``list_evaluators``)."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Evaluator, Measurement
from rlnas.registry import Registry, accepted_options

EVALUATORS: Registry[Callable[..., Evaluator]] = Registry("evaluator", {
    "nb201": "rlnas.evaluators.tabular:NB201Evaluator",
    "nbgraph": "rlnas.evaluators.nbgraph:NBGraphEvaluator",
    "train": "rlnas.evaluators.train:TrainEvaluator",
    "supernet": "rlnas.evaluators.supernet:SupernetEvaluator",
    "optimizer": "rlnas.evaluators.optimizer:OptimizerEvaluator",
    "shared": "rlnas.evaluators.shared:SharedEvaluator",
})
"""Evaluator classes by name; ``create_evaluator(**evaluator.spec())`` rebuilds an equal one."""


def register_evaluator(name: str, target: str | Callable[..., Evaluator]) -> None:
    """Register an evaluator class (or its ``module:Class`` path)."""
    EVALUATORS.register(name, target)


def list_evaluators() -> list[str]:
    """Names accepted by :func:`create_evaluator`, sorted."""
    return EVALUATORS.list()


def create_evaluator(name: str, **options: Any) -> Evaluator:
    """Build evaluator ``name`` with keyword ``options`` (the inverse of ``evaluator.spec()``)."""
    return _checked(name, EVALUATORS.create(name, **options))


def _checked(name: str, evaluator: Any) -> Evaluator:
    """``evaluator``, made by the factory registered as ``name``, unless it cannot evaluate (a plugin's mistake)."""
    if not callable(getattr(evaluator, "evaluate", None)):
        raise ConfigError(f"evaluator {name!r}: its registered factory returned {type(evaluator).__name__} "
                          f"{evaluator!r}, which has no evaluate method")
    return evaluator


def build_evaluator(spec: Mapping[str, Any], *, threads: int | None = None, device: str | None = None) -> Evaluator:
    """Build an evaluator from its stored ``spec`` plus the run options it takes (``threads``, ``device``)."""
    options = dict(spec)
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"evaluator spec {dict(spec)!r} has no 'name'")
    accepted = accepted_options(EVALUATORS.get(name))
    for key, value in (("threads", threads), ("device", device)):
        if value is not None and (accepted is None or key in accepted):
            options[key] = value
    return _checked(name, EVALUATORS.create(name, **options))


__all__ = ["Evaluator", "Measurement", "EVALUATORS", "register_evaluator", "list_evaluators", "create_evaluator",
           "build_evaluator"]
