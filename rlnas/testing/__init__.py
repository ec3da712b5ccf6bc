"""Helpers for tests: toy spaces with a known optimum, fake evaluators and contract suites.

Importing this package registers the ``toy`` evaluator and the toy weight-sharing pair
(agent ``toy_ws``, evaluator ``toy_supernet``), so studies that use them can be reopened.
"""
from rlnas.agents import register_agent
from rlnas.evaluators import register_evaluator
from rlnas.testing.toy import ToyEvaluator, toy_space

register_evaluator("toy", "rlnas.testing.toy:ToyEvaluator")
register_evaluator("toy_supernet", "rlnas.testing.weight_sharing:ToySupernetEvaluator")
register_agent("toy_ws", "rlnas.testing.weight_sharing:ToyWeightSharingAgent")

__all__ = ["ToyEvaluator", "toy_space"]
