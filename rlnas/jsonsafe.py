"""Plain JSON in and out: find what a value holds that JSON cannot, and write strict JSON.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON (other programs refuse
them), and cannot write NumPy scalars or arbitrary objects. :func:`json_problem` names the first
part of a value that is not plain JSON, so a caller can refuse it with a reason before storing
anything; :func:`strict_json_text` writes a value with every non-finite float as ``null``.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any


def json_problem(value: Any, where: str = "value", *, finite: bool = True) -> str | None:
    """``None`` if ``value`` is plain JSON (dicts with string keys, lists, tuples, strings, bools,
    ints, floats, ``None``; with ``finite`` only finite floats), else one line naming the first part
    that is not, e.g. ``"info['count'] is of type numpy.int64, not a JSON value"``."""
    stack = [(value, where)]
    seen: set[int] = set()
    while stack:
        item, path = stack.pop()
        if item is None or type(item) in (str, bool, int):
            continue
        if type(item) is float:
            if finite and not math.isfinite(item):
                return f"{path} is {item!r}, not a finite number"
            continue
        if type(item) in (dict, list, tuple):
            if id(item) in seen:
                return f"{path} contains itself"
            seen.add(id(item))
            if isinstance(item, dict):
                for key in item:
                    if type(key) is not str:
                        return f"{path} has a key {key!r} that is not a string"
                stack.extend((v, f"{path}[{k!r}]") for k, v in reversed(item.items()))
            else:
                stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
            continue
        kind = type(item)
        name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__.split('.')[0]}.{kind.__name__}"
        return f"{path} is of type {name}, not a JSON value"
    return None


def _finite_or_null(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite_or_null(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(v) for v in value]
    return value


def strict_json_text(value: Any, *, indent: int | None = None) -> str:
    """``value`` as JSON text that every JSON reader accepts: NaN and infinities become ``null``."""
    return json.dumps(_finite_or_null(value), indent=indent, allow_nan=False)
