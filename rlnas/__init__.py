"""rlnas: neural architecture and optimizer search with reinforcement learning."""
from __future__ import annotations

__version__ = "0.1.0"

from rlnas.agents import Agent, Proposal, create_agent, list_agents
from rlnas.errors import ConfigError, InvalidCandidate, RlnasError, StorageError
from rlnas.evaluators import Measurement, create_evaluator, list_evaluators
from rlnas.spaces import Candidate, Categorical, Space, create_space, list_spaces
from rlnas.study import Study, create_study, load_study
from rlnas.trial import Trial, TrialState

__all__ = [
    "__version__", "Agent", "Proposal", "create_agent", "list_agents", "ConfigError", "InvalidCandidate",
    "RlnasError", "StorageError", "Measurement", "create_evaluator", "list_evaluators", "Candidate",
    "Categorical", "Space", "create_space", "list_spaces", "Study", "create_study", "load_study",
    "Trial", "TrialState",
]
