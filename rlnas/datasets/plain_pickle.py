"""Read a pickle of plain data (dicts, lists, bytes, numbers, numeric NumPy arrays) without unpickling.

``pickle.Unpickler`` executes what a file names; even a restricted one that lets ``numpy.dtype``
and ``numpy.ndarray`` through lets a crafted file build an object array over bytes it controls,
and touching that array dereferences arbitrary pointers. :func:`load_plain` instead walks the
opcode stream (``pickletools.genops`` decodes opcodes without running anything) on a small stack
machine of its own. It knows the few NumPy constructors that pickles of numeric arrays use, builds
those arrays itself with ``numpy.frombuffer`` over a numeric dtype it chose, and refuses every
other global, every object dtype and every opcode outside plain data with a :class:`ConfigError`.
"""
from __future__ import annotations

import io
import math
import pickletools
import re
from typing import Any

import numpy as np

from rlnas.errors import ConfigError

_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "reconstruct",
    ("numpy.core.numeric", "_frombuffer"): "frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "frombuffer",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("_codecs", "encode"): "encode",
    ("__builtin__", "bytes"): "bytes",  # bytes() is how protocols 0-2 spell b""
    ("builtins", "bytes"): "bytes",
}
_NUMERIC_TYPESTR = re.compile(r"[biuf]\d{1,2}")
_BYTEORDERS = {"<", ">", "=", "|"}
_PY2_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING"}
_BYTES = {"BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8"}
_CONSTANTS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
              "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_PUT = {"PUT", "BINPUT", "LONG_BINPUT"}
_GET = {"GET", "BINGET", "LONG_BINGET"}


class _Global:
    """One of the allowed NumPy / codecs callables, by role; never the callable itself."""

    def __init__(self, role: str):
        self.role = role


class _PendingDtype:
    """``numpy.dtype(typestr)`` before its BUILD sets the byte order."""

    def __init__(self, typestr: str):
        self.dtype = np.dtype(typestr)


class _PendingArray:
    """``_reconstruct(ndarray, ...)`` before its BUILD supplies shape, dtype and bytes."""


_MARK = object()


def load_plain(data: bytes) -> Any:
    """The value pickled in ``data``, which may hold only plain data and numeric NumPy arrays.

    Raises :class:`ConfigError` naming what was refused (a global, an opcode, an object dtype)
    or why the stream is malformed.
    """
    machine = _Machine()
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(data)):
            if machine.step(opcode.name, arg):
                return machine.result()
    except ConfigError:
        raise
    # truncated stream, bad lengths or opcodes, stack underflow, unknown memo key, bad dtype string
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, RecursionError) as err:
        raise ConfigError(f"not a valid pickle ({type(err).__name__}: {err})") from None
    raise ConfigError("not a valid pickle (no STOP opcode)")


class _Machine:
    """The pickle stack machine restricted to plain values; ``step`` returns True at STOP."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}

    def result(self) -> Any:
        if len(self.stack) != 1:
            raise ConfigError(f"not a valid pickle ({len(self.stack)} values left at STOP)")
        value = self.stack[0]
        _require_plain(value, "the pickled value")
        return value

    def pop_mark(self) -> list[Any]:
        """The items above the topmost MARK, which is removed."""
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is _MARK:
                items = self.stack[i + 1:]
                del self.stack[i:]
                return items
        raise ValueError("no MARK on the stack")

    def step(self, name: str, arg: Any) -> bool:
        stack = self.stack
        if name in ("PROTO", "FRAME"):
            pass
        elif name == "STOP":
            return True
        elif name in _CONSTANTS:
            stack.append(arg)
        elif name in _PY2_STRINGS:  # a Python 2 str, read as bytes (like encoding="bytes")
            stack.append(arg.encode("latin-1"))
        elif name in _BYTES:
            stack.append(bytes(arg))
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name == "MARK":
            stack.append(_MARK)
        elif name == "POP":
            stack.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            stack.append(stack[-1])
        elif name in ("EMPTY_DICT", "EMPTY_LIST", "EMPTY_TUPLE"):
            stack.append({"EMPTY_DICT": dict, "EMPTY_LIST": list, "EMPTY_TUPLE": tuple}[name]())
        elif name == "LIST":
            stack.append(_plain_items(self.pop_mark()))
        elif name == "DICT":
            items = _plain_items(self.pop_mark())
            stack.append(dict(zip(items[::2], items[1::2], strict=True)))
        elif name == "TUPLE":
            stack.append(tuple(self.pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = tuple(stack[-n:])
            if len(items) != n or _MARK in items:
                raise ValueError(f"{name} needs {n} values")
            del stack[-n:]
            stack.append(items)
        elif name in ("APPEND", "APPENDS"):
            items = [stack.pop()] if name == "APPEND" else self.pop_mark()
            _list(stack[-1]).extend(_plain_items(items))
        elif name in ("SETITEM", "SETITEMS"):
            items = stack[-2:] if name == "SETITEM" else self.pop_mark()
            if name == "SETITEM":
                del stack[-2:]
            items = _plain_items(items)
            target = stack[-1]
            if not isinstance(target, dict):
                raise ConfigError(f"not a plain pickle (SETITEM on a {type(target).__name__})")
            target.update(zip(items[::2], items[1::2], strict=True))
        elif name in _PUT or name == "MEMOIZE":
            self.memo[len(self.memo) if name == "MEMOIZE" else arg] = stack[-1]
        elif name in _GET:
            stack.append(self.memo[arg])
        elif name in ("GLOBAL", "STACK_GLOBAL"):
            if name == "GLOBAL":
                module, _, attr = arg.partition(" ")
            else:
                attr, module = stack.pop(), stack.pop()
            role = _GLOBALS.get((str(module), str(attr)))
            if role is None:
                raise ConfigError(f"refusing to load {module}.{attr} (only plain NumPy arrays are allowed)")
            stack.append(_Global(role))
        elif name == "REDUCE":
            args = stack.pop()
            stack.append(_call(stack.pop(), args))
        elif name == "BUILD":
            state = stack.pop()
            built = _build(stack[-1], state)
            for key, value in self.memo.items():  # the memo may hold the object before BUILD
                if value is stack[-1]:
                    self.memo[key] = built
            stack[-1] = built
        else:
            raise ConfigError(f"refusing pickle opcode {name} (only plain data is allowed)")
        return False


def _require_plain(value: Any, where: str) -> None:
    if isinstance(value, (_Global, _PendingDtype, _PendingArray, np.dtype)) or value is _MARK:
        raise ConfigError(f"not a plain pickle ({where} is an unfinished NumPy object)")


def _plain_items(items: list[Any]) -> list[Any]:
    for item in items:
        _require_plain(item, "a container item")
    return items


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"not a plain pickle (APPEND to a {type(value).__name__})")
    return value


def _call(func: Any, args: Any) -> Any:
    """REDUCE for the allowed callables only."""
    role = func.role if isinstance(func, _Global) else None
    if not isinstance(args, tuple):
        raise ConfigError("not a plain pickle (REDUCE without an argument tuple)")
    if role == "encode" and len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
        return args[0].encode("latin-1")
    if role == "bytes" and not args:
        return b""
    if role == "dtype" and args and isinstance(args[0], (str, bytes)):
        typestr = _text(args[0])
        if not _NUMERIC_TYPESTR.fullmatch(typestr):
            raise ConfigError(f"refusing NumPy dtype {typestr!r} (only numeric arrays are allowed)")
        return _PendingDtype(typestr)
    if role == "reconstruct" and len(args) == 3 and isinstance(args[0], _Global) and args[0].role == "ndarray":
        return _PendingArray()
    if role == "frombuffer" and len(args) == 4:
        buffer, dtype, shape, order = args
        if not isinstance(buffer, bytes):
            raise ConfigError("not a plain pickle (array data that are not bytes)")
        return _array(buffer, _finished_dtype(dtype), shape, order == "F")
    raise ConfigError(f"not a plain pickle (a call to {role or type(func).__name__} with {len(args)} arguments)")


def _build(target: Any, state: Any) -> Any:
    """BUILD: set a pending dtype's byte order, or fill a pending array; nothing else has state."""
    if isinstance(target, _PendingDtype) and isinstance(state, tuple) and len(state) >= 2:
        order, extra = _text(state[1]), state[2:5]
        if order not in _BYTEORDERS or any(x is not None for x in extra):
            raise ConfigError(f"refusing NumPy dtype state {state!r} (only plain numeric dtypes are allowed)")
        return target.dtype.newbyteorder(order) if order in "<>" else target.dtype
    if isinstance(target, _PendingArray) and isinstance(state, tuple) and len(state) in (4, 5):
        shape, dtype, fortran, raw = state[-4:]
        if isinstance(raw, str):
            raw = raw.encode("latin-1")
        if not isinstance(raw, bytes):
            raise ConfigError("refusing a NumPy array whose data are not raw bytes (object arrays are not allowed)")
        return _array(raw, _finished_dtype(dtype), shape, bool(fortran))
    raise ConfigError(f"not a plain pickle (BUILD on a {type(target).__name__})")


def _text(value: Any) -> Any:
    """Python 2 strings arrive as bytes (like ``encoding="bytes"``); NumPy's own names are ASCII."""
    return value.decode("ascii", errors="replace") if isinstance(value, bytes) else value


def _finished_dtype(dtype: Any) -> np.dtype:
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf":
        raise ConfigError("refusing a NumPy array without a plain numeric dtype")
    return dtype


def _array(raw: bytes, dtype: np.dtype, shape: Any, fortran: bool) -> np.ndarray:
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ConfigError(f"refusing a NumPy array of shape {shape!r}")
    if math.prod(shape) * dtype.itemsize != len(raw):
        raise ConfigError(f"NumPy array of shape {shape} and dtype {dtype} with {len(raw)} bytes of data")
    flat = np.frombuffer(raw, dtype=dtype)
    return flat.reshape(shape, order="F" if fortran else "C").copy()
