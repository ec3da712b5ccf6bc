"""Checkpoint payloads as bytes, without pickle and without requiring torch.

A payload is a tree of dicts, lists, tuples, strings, numbers, booleans, ``None``, bytes,
NumPy arrays and torch tensors (the state dicts of agents and stateful evaluators). It is
written as a zip archive: ``state.json`` holds the tree, and every array or tensor is one
``.npy`` member (``numpy.save`` with ``allow_pickle=False``). torch is imported only to read
back a payload that holds tensors, so tabular searches with NumPy agents never import it.

Checkpoints written by earlier rlnas versions (``torch.save`` archives) are still read, with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import base64
import io
import json
import sys
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from rlnas.errors import ConfigError, StorageError

FORMAT = "rlnas-checkpoint/1"


def encode(payload: Any) -> bytes:
    """The bytes of ``payload`` (see the module docstring for what it may hold)."""
    arrays: list[tuple[str, np.ndarray]] = []

    def tree(value: Any, path: str = "") -> Any:
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, np.generic):
            return value if not isinstance(value, float) or np.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.generic):
            return tree(value.item(), path)
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                raise ConfigError(f"cannot checkpoint a NumPy object array{_at(path)}: {WHAT_A_STATE_HOLDS}")
            arrays.append((f"a{len(arrays)}.npy", value))
            return {"__array__": arrays[-1][0]}
        if _is_tensor(value):
            return _tensor_tree(value, arrays)
        if isinstance(value, (bytes, bytearray)):
            return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
        if isinstance(value, tuple):
            return {"__tuple__": [tree(v, f"{path}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [tree(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if all(isinstance(k, str) and not k.startswith("__") for k in value):
                return {k: tree(v, f"{path}[{k!r}]") for k, v in value.items()}
            return {"__items__": [[tree(k, path), tree(v, f"{path}[{k!r}]")] for k, v in value.items()]}
        raise ConfigError(f"cannot checkpoint a value of type {type(value).__name__}{_at(path)}: {WHAT_A_STATE_HOLDS}")

    document = {"format": FORMAT, "state": tree(payload)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("state.json", json.dumps(document, separators=(",", ":")))
        for name, array in arrays:
            with archive.open(name, "w") as member:
                np.save(member, array, allow_pickle=False)
    return buffer.getvalue()


WHAT_A_STATE_HOLDS = ("a state_dict may hold None, booleans, numbers, strings, bytes, lists, tuples, dicts, "
                      "NumPy arrays and torch tensors")


def _at(path: str) -> str:
    return f" at {path}" if path else ""


def decode(data: bytes) -> Any:
    """The payload :func:`encode` wrote (or an older ``torch.save`` checkpoint)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise StorageError("checkpoint is not a readable archive") from None
    with archive:
        names = set(archive.namelist())
        if "state.json" not in names:
            return _legacy(data)
        document = json.loads(archive.read("state.json"))
        if document.get("format") != FORMAT:
            raise StorageError(f"unknown checkpoint format {document.get('format')!r}")

        def array(name: str) -> np.ndarray:
            with archive.open(name) as member:
                return np.load(io.BytesIO(member.read()), allow_pickle=False)

        def tree(value: Any) -> Any:
            if isinstance(value, list):
                return [tree(v) for v in value]
            if not isinstance(value, dict):
                return value
            if "__array__" in value:
                return array(value["__array__"])
            if "__tensor__" in value:
                return _tensor(array(value["__tensor__"]), value["dtype"])
            if "__bytes__" in value:
                return base64.b64decode(value["__bytes__"])
            if "__tuple__" in value:
                return tuple(tree(v) for v in value["__tuple__"])
            if "__items__" in value:
                return {tree(k): tree(v) for k, v in value["__items__"]}
            if "__float__" in value:
                return float(value["__float__"])
            return {k: tree(v) for k, v in value.items()}

        return tree(document["state"])


def _is_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")  # a tensor can only exist if torch was imported
    return torch is not None and isinstance(value, torch.Tensor)


def _tensor_tree(value: Any, arrays: list[tuple[str, np.ndarray]]) -> dict[str, str]:
    import torch

    tensor = value.detach().cpu()
    dtype = str(tensor.dtype).removeprefix("torch.")
    if tensor.dtype == torch.bfloat16:  # NumPy has no bfloat16: keep the bits
        array = tensor.view(torch.int16).numpy()
    else:
        array = tensor.numpy()
    arrays.append((f"a{len(arrays)}.npy", array))
    return {"__tensor__": arrays[-1][0], "dtype": dtype}


def _tensor(array: np.ndarray, dtype: str) -> Any:
    import torch

    tensor = torch.from_numpy(np.array(array))
    if dtype == "bfloat16":
        return tensor.view(torch.bfloat16)
    return tensor.to(getattr(torch, dtype))


def _legacy(data: bytes) -> Any:
    import torch

    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the bytes are not a checkpoint
        raise StorageError(f"checkpoint cannot be read: {type(exc).__name__}: {exc}") from None


__all__ = ["encode", "decode", "FORMAT"]
