"""Item 13 (library side): strict JSON out (no ``Infinity``/``NaN``), and a named reason for any
part of a result that plain JSON cannot hold (item 6 uses it to FAIL such a trial)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rlnas.jsonsafe import json_problem, strict_json_text


def _strict_loads(text: str):
    def refuse(constant: str):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_floats_become_null_and_the_text_is_strict_json():
    value = {"reward": math.inf, "metrics": {"loss": -math.inf, "acc": math.nan, "ok": 1.5}, "curve": (1.0, math.nan)}
    with pytest.raises(ValueError, match="Infinity is not JSON"):
        _strict_loads(json.dumps(value))  # what Python writes by default
    assert _strict_loads(strict_json_text(value, indent=2)) == {
        "reward": None, "metrics": {"loss": None, "acc": None, "ok": 1.5}, "curve": [1.0, None]}


@pytest.mark.parametrize(("value", "problem"), [
    ({"count": np.int64(3)}, "info['count'] is of type numpy.int64, not a JSON value"),
    ({"curve": [1.0, np.float32(2.0)]}, "info['curve'][1] is of type numpy.float32, not a JSON value"),
    ({"when": object()}, "info['when'] is of type object, not a JSON value"),
    ({"nested": {"x": math.nan}}, "info['nested']['x'] is nan, not a finite number"),
    ({1: "a"}, "info has a key 1 that is not a string"),
    ({"b": b"raw"}, "info['b'] is of type bytes, not a JSON value"),
])
def test_the_first_part_that_is_not_plain_json_is_named(value, problem):
    assert json_problem(value, "info") == problem


def test_plain_json_has_no_problem_and_a_cycle_is_named():
    assert json_problem({"a": [1, 2.5, None, True, "x", {"b": (1, 2)}]}, "info") is None
    assert json_problem({"x": math.inf}, "info", finite=False) is None
    loop: list = []
    loop.append(loop)
    assert json_problem(loop, "info") == "info[0] contains itself"
