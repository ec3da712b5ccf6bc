"""Evaluators and their registry (``create_evaluator`` / ``list_evaluators``)."""
from __future__ import annotations

import importlib
from typing import Any

from rlnas.checks import check_options
from rlnas.errors import ConfigError
from rlnas.evaluators.base import Evaluator, Measurement

EVALUATORS: dict[str, str] = {
    "nb201": "rlnas.evaluators.tabular:NB201Evaluator",
    "train": "rlnas.evaluators.train:TrainEvaluator",
    "toy": "rlnas.testing.toy:ToyEvaluator",
    "faulty": "rlnas.testing.faults:FaultyEvaluator",
}


def register_evaluator(name: str, path: str) -> None:
    """Register an evaluator class by its ``module:Class`` path."""
    EVALUATORS[name] = path


def list_evaluators() -> list[str]:
    """Names accepted by :func:`create_evaluator`, sorted."""
    return sorted(EVALUATORS)


def create_evaluator(name: str, **options: Any) -> Evaluator:
    """Build evaluator ``name`` with keyword ``options`` (the inverse of ``evaluator.spec()``).

    Options are checked against the class's signature first: an unknown name or a value of
    the wrong type is a :class:`ConfigError` naming it.
    """
    if name not in EVALUATORS:
        raise ConfigError(f"unknown evaluator {name!r} (choices: {', '.join(list_evaluators())})")
    module, _, attr = EVALUATORS[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    return cls(**check_options(cls, options, f"evaluator {name!r}"))


__all__ = ["EVALUATORS", "Evaluator", "Measurement", "create_evaluator", "list_evaluators", "register_evaluator"]
