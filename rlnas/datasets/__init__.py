"""Image data sets for the training evaluators (``load_dataset`` / ``list_datasets``).

| name | where the images come from | split (all seeded by ``split_seed``, stratified by class) |
|---|---|---|
| ``digits`` | shipped UCI 8x8 digits, 1,797 images | test 20 %, valid 20 %, train 60 % |
| ``mnist5k`` | shipped 5,000-image MNIST subset, 28x28 | test 20 %, valid 20 %, train 60 % |
| ``cifar10`` | ``data_root``: the official python batches | test = ``test_batch``; valid 10 % of the train batches |
| ``imagefolder`` | ``data_root``: one folder per class | ``train/valid/test`` subfolders, or carved 60/20/20 |

Every split is normalized per channel with the mean and std of its train split.
"""
from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlnas.registry import Registry

if TYPE_CHECKING:
    from rlnas.datasets.base import DatasetSplits, ImageData, stratified_split

DATASETS: Registry[Callable[..., DatasetSplits]] = Registry("dataset", {
    "cifar10": "rlnas.datasets.cifar:load_cifar10",
    "digits": "rlnas.datasets.shipped:load_digits",
    "imagefolder": "rlnas.datasets.folder:load_image_folder",
    "mnist5k": "rlnas.datasets.shipped:load_mnist5k",
})
"""Loaders by name, each called as ``(root, *, split_seed, **options)``."""


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return DATASETS.list()


def load_dataset(name: str, root: str | Path | None = None, *, split_seed: int = 0,
                 valid_fraction: float | None = None, **options: Any) -> DatasetSplits:
    """Load data set ``name`` and split it into train / valid / test (see the module table).

    ``root`` is the data location (required for ``cifar10`` and ``imagefolder``; for the shipped
    sets it may name another ``.npz`` of the same layout). ``valid_fraction`` overrides the
    default share of the valid split. Further ``options``: ``test_fraction`` (digits, mnist5k,
    imagefolder), ``train_size`` (cifar10: keep a stratified subset of the train split),
    ``image_size=(H, W)`` (imagefolder: resize every image).
    """
    from rlnas.errors import ConfigError, first_line

    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise ConfigError(f"data set {name!r}: root must be a path (text), got {type(root).__name__} {root!r:.80}")
    if valid_fraction is not None:
        options["valid_fraction"] = valid_fraction
    try:
        return DATASETS.create(name, root, split_seed=split_seed, **options)
    except ConfigError:
        raise
    except (OSError, ValueError, KeyError, EOFError, tarfile.TarError, zlib.error) as exc:
        # what a reader raises on a file it cannot read: the user's data, not a defect
        reason = first_line(exc)
        where = f" from {root}" if root is not None else ""
        raise ConfigError(f"cannot load data set {name!r}{where}: {reason}") from None


def __getattr__(name: str) -> Any:
    # DatasetSplits, ImageData and stratified_split live in rlnas.datasets.base (imports torch): load on use.
    if name in ("DatasetSplits", "ImageData", "stratified_split"):
        from rlnas.datasets import base

        return getattr(base, name)
    raise AttributeError(f"module 'rlnas.datasets' has no attribute {name!r}")


__all__ = ["DATASETS", "DatasetSplits", "ImageData", "list_datasets", "load_dataset", "stratified_split"]
