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

from pathlib import Path
from typing import Any

from rlnas.datasets.base import DatasetSplits, ImageData, stratified_split
from rlnas.datasets.cifar import load_cifar10
from rlnas.datasets.folder import load_image_folder
from rlnas.datasets.shipped import load_shipped
from rlnas.errors import ConfigError

DATASETS: tuple[str, ...] = ("cifar10", "digits", "imagefolder", "mnist5k")


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return list(DATASETS)


def load_dataset(name: str, root: str | Path | None = None, *, split_seed: int = 0,
                 valid_fraction: float | None = None, **options: Any) -> DatasetSplits:
    """Load data set ``name`` and split it into train / valid / test (see the module table).

    ``root`` is the data location (required for ``cifar10`` and ``imagefolder``; for the shipped
    sets it may name another ``.npz`` of the same layout). ``valid_fraction`` overrides the
    default share of the valid split. Further ``options``: ``test_fraction`` (digits, mnist5k,
    imagefolder), ``train_size`` (cifar10: keep a stratified subset of the train split),
    ``image_size=(H, W)`` (imagefolder: resize every image).
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r} (choices: {', '.join(DATASETS)})")
    if valid_fraction is not None:
        options["valid_fraction"] = valid_fraction
    try:
        if name in ("digits", "mnist5k"):
            return load_shipped(name, root, split_seed=split_seed, **options)
        if name == "cifar10":
            return load_cifar10(root, split_seed=split_seed, **options)
        return load_image_folder(root, split_seed=split_seed, **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise ConfigError(f"dataset {name!r}: {err}") from None
        raise


__all__ = ["DATASETS", "DatasetSplits", "ImageData", "list_datasets", "load_dataset", "stratified_split"]
