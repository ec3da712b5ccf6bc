"""Evaluators and their registry (``create_evaluator`` / ``list_evaluators``)."""
from __future__ import annotations

import importlib
from typing import Any

from rlnas.errors import ConfigError
from rlnas.evaluators.base import Evaluator, Measurement

EVALUATORS: dict[str, str] = {
    "nb201": "rlnas.evaluators.tabular:NB201Evaluator",
    "train": "rlnas.evaluators.train:TrainEvaluator",
    "toy": "rlnas.testing.toy:ToyEvaluator",
    "shared": "rlnas.evaluators.shared:SharedEvaluator",
}


def register_evaluator(name: str, path: str) -> None:
    """Register an evaluator class by its ``module:Class`` path."""
    EVALUATORS[name] = path


def list_evaluators() -> list[str]:
    """Names accepted by :func:`create_evaluator`, sorted."""
    return sorted(EVALUATORS)


def create_evaluator(name: str, **options: Any) -> Evaluator:
    """Build evaluator ``name`` with keyword ``options`` (the inverse of ``evaluator.spec()``)."""
    if name not in EVALUATORS:
        raise ConfigError(f"unknown evaluator {name!r} (choices: {', '.join(list_evaluators())})")
    module, _, attr = EVALUATORS[name].partition(":")
    return getattr(importlib.import_module(module), attr)(**options)


__all__ = ["Evaluator", "Measurement", "EVALUATORS", "register_evaluator", "list_evaluators", "create_evaluator"]
