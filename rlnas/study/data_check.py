"""The data a study's trials were measured on: a digest stored with the study, checked whenever it goes on.

Evaluators that read data from outside the package (``data_root``: CIFAR-10 batches, an image folder,
an ``.npz``) report a digest of the loaded images and labels (``data_fingerprint()``); a study keeps the
digest of its first run in its settings, and a later run on other data (files replaced or edited under
the same path) is refused instead of mixing results measured on two data sets.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlnas.errors import ConfigError


def data_fingerprint_of(evaluator: object) -> str | None:
    """``evaluator.data_fingerprint()`` for an evaluator that has one (it loads the data), else ``None``."""
    method = getattr(evaluator, "data_fingerprint", None)
    if not callable(method):
        return None
    fingerprint = method()
    if fingerprint is not None and not (isinstance(fingerprint, str) and fingerprint):
        raise ConfigError(f"{type(evaluator).__name__}.data_fingerprint() must return a non-empty string or None, "
                          f"got {fingerprint!r:.80}")
    return fingerprint


def check_same_data(name: str, settings: Mapping[str, Any], evaluator: object) -> str | None:
    """The evaluator's data digest (``None`` without one); :class:`ConfigError` when study ``name`` stored
    another (its trials were measured on other data: the files under ``data_root`` changed since)."""
    fingerprint = data_fingerprint_of(evaluator)
    stored = settings.get("data_fingerprint")
    if fingerprint is not None and stored is not None and fingerprint != stored:
        where = getattr(evaluator, "data_root", None)
        raise ConfigError(f"study {name!r}: the data{f' at {where}' if where else ''} are not those its trials were "
                          f"measured on (digest {fingerprint}, stored {stored}): put the original data back, or "
                          "search them in a new study")
    return fingerprint
