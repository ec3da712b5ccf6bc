"""Helpers for tests: toy spaces with a known optimum, a fake evaluator and contract suites."""
from rlnas.testing.toy import ToyEvaluator, toy_space

__all__ = ["ToyEvaluator", "toy_space"]
