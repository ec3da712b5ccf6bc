"""Checks of user-supplied values against declared types and ranges, each failing with one line.

Options arrive from JSON, ``KEY=VALUE`` flags and stored records, so a value may be a string
where a number is declared. :func:`check_value` compares a value with a type annotation
(``int``, ``float``, ``bool``, ``str``, unions with ``None``, ``Literal``, containers, classes)
and :func:`check_option_types` checks keyword options against a callable's annotations (the
registries call it), so a wrong value is refused with a :class:`ConfigError` naming it before
anything is built or stored.
"""
from __future__ import annotations

import collections.abc
import inspect
import math
import numbers
import os
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from rlnas.errors import ConfigError

SEED_MAX = 2**31 - 1
"""Largest seed: it fits the 32-bit signed integer column of every database backend."""


def check_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` as an int in ``[0, SEED_MAX]``, or a :class:`ConfigError` naming it."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"{what} must be an integer, got {type(seed).__name__} {_show(seed)}")
    if not 0 <= int(seed) <= SEED_MAX:
        raise ConfigError(f"{what} must be between 0 and {SEED_MAX}, got {seed}")
    return int(seed)


def absolute_path(path: Any, what: str) -> str | None:
    """``path`` (a string or path) with ``~`` expanded, made absolute; ``None`` stays ``None``. Paths a
    study stores are absolute: ``resume``, ``retrain`` and ``export`` may run from another folder."""
    if path is None:
        return None
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise ConfigError(f"{what} must be a path, got {_show(path)}")
    return os.path.abspath(os.path.expanduser(path))


MAX_THREADS = 1024
"""Most torch threads an evaluation may ask for (far more fail to start, or crash the process)."""

MAX_EPOCHS = 100_000
"""Most epochs of a training evaluator (a typo such as 1e30 would otherwise run for ever)."""


def check_evaluation_seed(seed: Any, what: str = "seed") -> int:
    """``seed`` of one evaluation (what a study derives per slot: 63 bits) as an int in ``[0, 2**63)``, or a
    :class:`ConfigError` naming it."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or not 0 <= int(seed) < 2 ** 63:
        raise ConfigError(f"{what} must be an integer in [0, 2**63), got {_show(seed)}")
    return int(seed)


def check_sgd_options(momentum: Any, weight_decay: Any, what: str) -> None:
    """:class:`ConfigError` unless ``momentum`` is in ``[0, 1)`` and ``weight_decay`` a finite number ``>= 0``
    (what ``torch.optim.SGD`` would refuse only at the first step); ``what`` names the evaluator."""
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real) or not 0 <= momentum < 1:
        raise ConfigError(f"{what}: momentum must be in [0, 1), got {momentum!r}")
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real) \
            or not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ConfigError(f"{what}: weight_decay must be a number >= 0, got {weight_decay!r}")


def check_threads(threads: Any) -> int | None:
    """``threads`` (torch threads of an evaluation) as ``None`` or an int from 1 to :data:`MAX_THREADS`, else a
    :class:`ConfigError`."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)
                                or not 1 <= threads <= MAX_THREADS):
        raise ConfigError(f"threads must be an integer from 1 to {MAX_THREADS}, got {threads!r}")
    return None if threads is None else int(threads)


def check_device(device: Any, what: str = "device") -> str:
    """``device`` (``cpu``, ``cuda``, ``cuda:1``, ``mps``; a string or a ``torch.device``) as a string when
    this machine has it, else a :class:`ConfigError` naming it (before anything is built or stored)."""
    if device == "cpu":  # the default: no torch import (a tabular search never loads torch)
        return "cpu"
    import torch

    text = str(device) if isinstance(device, torch.device) else device
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{what} must be a torch device such as cpu or cuda, got {device!r}")
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{what} {text!r} is not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (parsed.index is not None and parsed.index >= count):
            raise ConfigError(f"{what} {text!r} is not available: this machine has {count} CUDA GPU(s) "
                              f"(torch {torch.__version__})")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{what} {text!r} is not available on this machine")
    elif parsed.type != "cpu":
        raise ConfigError(f"{what} {text!r}: rlnas runs on cpu, cuda or mps")
    return text


def check_value(value: Any, annotation: Any, what: str) -> Any:
    """``value`` if it matches ``annotation`` (an integral float becomes an ``int`` for an ``int``,
    a list becomes a tuple for a ``tuple``); otherwise a :class:`ConfigError` naming ``what``.

    Floats must be finite. Annotations this function does not understand accept anything.
    """
    ok, result = _match(value, annotation)
    if not ok:
        raise ConfigError(f"{what} must be {describe(annotation)}, got {_show(value)}")
    return result


def is_finite_real(value: Any) -> bool:
    """A real number (not a bool; NumPy's too) that is finite as a float: an int too large for a
    float is not (``math.isfinite`` would raise ``OverflowError``)."""
    return _number(value)[0]


def check_option_types(factory: Callable[..., Any], options: Mapping[str, Any], what: str) -> dict[str, Any]:
    """``options`` with each value checked by :func:`check_value` against the annotation of the
    keyword parameter of ``factory`` (a function or a class) it goes to; names are not checked
    here (the registry does that). Unannotated parameters and ``**kwargs`` accept anything."""
    hints = _type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    return {key: check_value(value, hints[key], f"{what} option {key!r}") if key in hints else value
            for key, value in options.items()}


def check_arguments(cls: type, arguments: Mapping[str, Any], what: str) -> None:
    """Check a constructor's own arguments (``locals()`` at the top of ``cls.__init__``) against their
    annotations as :func:`check_option_types` checks a registry's options, so that a direct call is
    refused as ``create_evaluator`` refuses the same values (``remat="no"`` is not true). A path-like
    value counts as the string it names, a ``torch.device`` as its name."""
    plain = {key: _plain(value) for key, value in arguments.items() if key not in ("self", "__class__")}
    check_option_types(cls, plain, what)


def _plain(value: Any) -> Any:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "torch" and type(value).__name__ == "device":
        return str(value)
    return value


def describe(annotation: Any) -> str:
    """Words for what ``annotation`` accepts, e.g. ``"an integer or null"``."""
    if annotation is type(None) or annotation is None:
        return "null"
    words = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    if annotation in words:
        return words[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and len(args) > 1 and Ellipsis not in args:  # a fixed length: (height, width)
        same = all(a == args[0] for a in args)
        return (f"a list of {len(args)} {_plural(args[0])}" if same
                else f"a list of {len(args)}: {', '.join(describe(a) for a in args)}")
    if origin in (list, tuple, collections.abc.Sequence):
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin in (dict, collections.abc.Mapping):
        return "a JSON object"
    if origin is collections.abc.Callable:
        return "a function"
    return f"a {getattr(annotation, '__name__', str(annotation))}"


def _plural(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple, collections.abc.Sequence) and args:
        return f"lists of {_plural(args[0])}"
    plurals = {int: "integers", float: "finite numbers", str: "strings", bool: "booleans"}
    return plurals.get(annotation, describe(annotation))


def _match(value: Any, annotation: Any) -> tuple[bool, Any]:
    """``(matches, value to keep)``."""
    if annotation is Any or annotation is inspect.Parameter.empty or isinstance(annotation, (str, typing.TypeVar)):
        return True, value
    if annotation is None or annotation is type(None):
        return value is None, value
    if annotation is bool:
        return isinstance(value, (bool, np.bool_)), bool(value) if isinstance(value, np.bool_) else value
    if annotation is int:
        return _integer(value)
    if annotation is float:
        return _number(value)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        for member in args:
            ok, result = _match(value, member)
            if ok:
                return True, result
        return False, value
    if origin is typing.Literal:
        return value in args, value
    if origin in (list, tuple, collections.abc.Sequence):
        return _sequence(value, origin, args)
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, collections.abc.Mapping), value
    if origin is collections.abc.Callable or annotation is collections.abc.Callable:
        return callable(value), value
    if isinstance(annotation, type):
        return isinstance(value, annotation), value
    return True, value


def _integer(value: Any) -> tuple[bool, Any]:
    if isinstance(value, (bool, np.bool_)):
        return False, value
    if isinstance(value, (int, np.integer)):
        return True, int(value)
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return True, int(value)
    return False, value


def _number(value: Any) -> tuple[bool, Any]:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return False, value
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False, value
    return finite, value.item() if isinstance(value, np.generic) else value  # NumPy's as Python's, as ints are


def _sequence(value: Any, origin: Any, args: tuple[Any, ...]) -> tuple[bool, Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return False, value
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        args = args[:1]
    if origin is tuple and len(args) > 1:
        if len(value) != len(args):
            return False, value
        pairs = list(zip(value, args))
    else:
        pairs = [(item, args[0] if args else Any) for item in value]
    checked = []
    for item, annotation in pairs:
        ok, result = _match(item, annotation)
        if not ok:
            return False, value
        checked.append(result)
    return True, tuple(checked) if origin is tuple else checked


def _type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations of ``func``; names that cannot be resolved are left unchecked."""
    try:
        return typing.get_type_hints(func)
    except (NameError, TypeError, AttributeError):
        return {}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
