"""Helpers for tests: toy spaces with a known optimum, a fake evaluator and contract suites.

Importing this package registers the ``toy`` evaluator, so studies that use it can be reopened.
"""
from rlnas.evaluators import register_evaluator
from rlnas.testing.toy import ToyEvaluator, toy_space

register_evaluator("toy", "rlnas.testing.toy:ToyEvaluator")

__all__ = ["ToyEvaluator", "toy_space"]
