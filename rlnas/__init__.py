"""rlnas: neural architecture and optimizer search with reinforcement learning.

The public names (``__all__``) are imported on first use (PEP 562), so that ``import rlnas.cli``
loads only what a command needs and can set the process up (one BLAS thread) before NumPy loads.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "rlnas.agents": ("Agent", "Proposal", "create_agent", "list_agents"),
    "rlnas.errors": ("ConfigError", "InvalidCandidate", "RlnasError", "StorageError"),
    "rlnas.evaluators": ("Measurement", "create_evaluator", "list_evaluators"),
    "rlnas.spaces": ("Candidate", "Categorical", "Space", "create_space", "list_spaces"),
    "rlnas.study": ("Study", "create_study", "load_study"),
    "rlnas.trial": ("Trial", "TrialState"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "__version__", "Agent", "Proposal", "create_agent", "list_agents", "ConfigError", "InvalidCandidate",
    "RlnasError", "StorageError", "Measurement", "create_evaluator", "list_evaluators", "Candidate",
    "Categorical", "Space", "create_space", "list_spaces", "Study", "create_study", "load_study",
    "Trial", "TrialState",
]

if TYPE_CHECKING:
    from rlnas.agents import Agent, Proposal, create_agent, list_agents
    from rlnas.errors import ConfigError, InvalidCandidate, RlnasError, StorageError
    from rlnas.evaluators import Measurement, create_evaluator, list_evaluators
    from rlnas.spaces import Candidate, Categorical, Space, create_space, list_spaces
    from rlnas.study import Study, create_study, load_study
    from rlnas.trial import Trial, TrialState


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'rlnas' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
