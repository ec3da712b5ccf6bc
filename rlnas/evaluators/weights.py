"""Trained weights of the train evaluator: one file per evaluated network, in a folder the study names.

Where: the folder is the evaluator option ``weights_dir``, so it is part of the evaluator spec
stored with the study (``rlnas search`` puts it next to a SQLite database:
``runs.db`` -> ``runs.db-weights/<study>/``). The store keeps only a file name per trial (in the
trial's evaluator info, ``weights``). Weights stay out of the database because they can be
hundreds of megabytes per trial at full scale, where a database row is read whole and copied
by every backup; a folder is easy to prune, copy or delete by hand.

What: ``torch.save`` of a plain dictionary (loaded with ``weights_only=True``: no code runs)
holding the network's ``state_dict`` after training and what rebuilds the network without the
data set: space, candidate key, ``model_kwargs`` and input shape, plus the seed and accuracies.

How many: every trained network (``keep_weights=None``), or only the ``keep_weights`` best by
``valid_acc`` (ties: the first saved stays). A file that drops out of the best K is deleted;
its trial's ``weights`` entry then names a file that no longer exists, and
:func:`load_weights` says so.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rlnas.errors import ConfigError, RlnasError, first_line

FORMAT = "rlnas-weights/1"
_NAME = re.compile(r"^acc(\d+\.\d+)-(\d+)-([0-9a-f]{16})\.pt$")


class NoTrainedWeights(RlnasError):
    """A trial has no trained weights on disk; the message says why."""


def weights_file_name(key: str, seed: int, valid_acc: float, order: int) -> str:
    """``acc<valid_acc>-<order>-<digest of key and seed>.pt``: sortable by accuracy without opening files."""
    digest = hashlib.sha256(f"{key}\n{seed}".encode()).hexdigest()[:16]
    return f"acc{valid_acc:010.5f}-{order:017d}-{digest}.pt"


def save_weights(folder: str | Path, model: nn.Module, *, space: str, key: str, seed: int,
                 model_kwargs: Mapping[str, Any], input_shape: tuple[int, ...], metrics: Mapping[str, float],
                 keep: int | None) -> str | None:
    """Save ``model``'s weights into ``folder`` and prune it to the best ``keep`` (see the module docstring).

    Returns the file name, or ``None`` when the network is not among the best ``keep``.
    """
    if keep is not None and keep < 1:
        raise ConfigError(f"keep_weights must be a positive number or null (all), got {keep!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    valid_acc = round(max(float(metrics.get("valid_acc", 0.0)), 0.0), 5)  # as the file name holds it
    order = 10**17 - time_ns() // 1000  # decreases with time: of equal accuracies the earlier file ranks first
    name = weights_file_name(key, seed, valid_acc, order)
    if keep is not None:
        kept = ranked_files(folder)
        if len(kept) >= keep and (valid_acc, order) <= _rank(kept[keep - 1]):
            return None
    payload = {"format": FORMAT, "space": space, "key": key, "seed": int(seed), "model_kwargs": dict(model_kwargs),
               "input_shape": [int(s) for s in input_shape], "metrics": {k: float(v) for k, v in metrics.items()},
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    temporary = folder / f".{name}.tmp"
    torch.save(payload, temporary)
    os.replace(temporary, folder / name)  # a reader never sees half a file
    if keep is not None:
        for old in ranked_files(folder)[keep:]:
            old.unlink(missing_ok=True)
    return name


def _load_failure(exc: BaseException) -> str:
    """What ``torch.load`` found wrong, without its advice to load with ``weights_only=False`` (which would run
    whatever code the file holds)."""
    text = str(exc)
    if "Weights only load failed" in text:
        found = [line.strip() for line in text.splitlines() if line.strip().startswith("Unsupported")]
        return found[0][:200] if found else "not a plain torch file"
    return first_line(exc)[:200]


def time_ns() -> int:
    """Nanoseconds since the epoch (a function so that tests may fix it)."""
    import time

    return time.time_ns()


def _rank(path: Path) -> tuple[float, int]:
    m = _NAME.match(path.name)
    assert m is not None
    return float(m.group(1)), int(m.group(2))


def ranked_files(folder: str | Path) -> list[Path]:
    """Weight files of ``folder``, best ``valid_acc`` first (earlier files first on ties)."""
    files = [p for p in Path(folder).glob("acc*.pt") if _NAME.match(p.name)]
    return sorted(files, key=_rank, reverse=True)


def load_weights(folder: str | Path | None, name: str | None, *, trial: str = "this trial") -> dict[str, Any]:
    """The saved dictionary of weight file ``name`` in ``folder``; :class:`NoTrainedWeights` says plainly why not."""
    if folder is None:
        raise NoTrainedWeights(f"{trial} has no trained weights: its evaluator kept none (the train evaluator "
                               "keeps them when given weights_dir; tables and other evaluators train nothing)")
    if name is None:
        raise NoTrainedWeights(f"{trial} has no trained weights: it was not among the best networks kept "
                               f"(keep_weights) in {folder}")
    path = Path(folder) / name
    if not path.is_file():
        raise NoTrainedWeights(f"{trial} has no trained weights any more: {path} is gone (pruned by keep_weights, "
                               "or the folder was moved or deleted)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as exc:  # truncated, corrupt
        raise RlnasError(f"cannot read weights file {path}: it is damaged or not a file of saved weights "
                         f"({_load_failure(exc)})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise RlnasError(f"{path} is not an rlnas weights file (format {found!r})")
    return payload


__all__ = ["FORMAT", "NoTrainedWeights", "load_weights", "ranked_files", "save_weights", "weights_file_name"]
