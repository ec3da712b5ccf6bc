"""Helpers for tests: toy spaces with a known optimum, fake evaluators and contract suites.

Importing this package registers the toy evaluators (``toy``, ``slow_toy``, ``hanging_toy``,
``dying_toy``, ``counting_toy``, ``odd_toy``) and the toy weight-sharing evaluator
(``toy_supernet``), so studies that use them can be reopened. The toy weight-sharing agent is
registered only where a test asks for it (:func:`rlnas.testing.weight_sharing.registered_toy_agent`), so that it never
joins the agents the suites run over.
"""
from rlnas.evaluators import register_evaluator
from rlnas.testing.toy import ToyEvaluator, toy_space

register_evaluator("toy", "rlnas.testing.toy:ToyEvaluator")
register_evaluator("slow_toy", "rlnas.testing.faults:SlowToyEvaluator")
register_evaluator("hanging_toy", "rlnas.testing.faults:HangingToyEvaluator")
register_evaluator("dying_toy", "rlnas.testing.faults:DyingToyEvaluator")
register_evaluator("counting_toy", "rlnas.testing.faults:CountingToyEvaluator")
register_evaluator("odd_toy", "rlnas.testing.faults:OddResultEvaluator")
register_evaluator("toy_supernet", "rlnas.testing.weight_sharing:ToySupernetEvaluator")

__all__ = ["ToyEvaluator", "toy_space"]
