"""Update rules of Neural Optimizer Search and their compiled torch optimizers.

The rule language (:mod:`rlnas.optim.rule`) is pure Python; :class:`RuleOptimizer` and
:func:`write_optimizer_module` need torch and are imported on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rlnas.optim.rule import (
    BASE_OPERANDS,
    BINARY,
    NAMED_RULES,
    UNARY,
    Iteration,
    Rule,
    RuleSyntaxError,
    as_rule,
    list_rules,
    parse_rule,
    rule,
)

if TYPE_CHECKING:  # what the lazy names below are, for type checkers
    from rlnas.optim.export import optimizer_module_source, write_optimizer_module
    from rlnas.optim.optimizer import RuleOptimizer

_LAZY = {
    "RuleOptimizer": "rlnas.optim.optimizer",
    "write_optimizer_module": "rlnas.optim.export",
    "optimizer_module_source": "rlnas.optim.export",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlnas.optim' has no attribute {name!r}")


__all__ = [
    "BASE_OPERANDS",
    "BINARY",
    "NAMED_RULES",
    "UNARY",
    "Iteration",
    "Rule",
    "RuleOptimizer",
    "RuleSyntaxError",
    "as_rule",
    "list_rules",
    "optimizer_module_source",
    "parse_rule",
    "rule",
    "write_optimizer_module",
]
