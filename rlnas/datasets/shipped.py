"""The two image sets shipped in ``rlnas/data``: UCI 8x8 digits and a 5,000-image MNIST subset."""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlnas.datasets.base import DatasetSplits, make_splits, stratified_split
from rlnas.errors import ConfigError

# name -> (file in rlnas/data, largest pixel value)
SHIPPED: dict[str, tuple[str, float]] = {
    "digits": ("digits_8x8.npz", 16.0),
    "mnist5k": ("mnist_5k.npz", 255.0),
}


def load_shipped(name: str, root: str | Path | None = None, *, valid_fraction: float = 0.2,
                 test_fraction: float = 0.2, split_seed: int = 0) -> DatasetSplits:
    """Load ``digits`` or ``mnist5k`` and split it stratified (see :func:`stratified_split`).

    ``root`` may name another ``.npz`` with the same arrays (``images`` N x H x W uint8,
    ``labels``); by default the shipped file is used.
    """
    filename, scale = SHIPPED[name]
    path = Path(root) if root is not None else resources.files("rlnas.data").joinpath(filename)
    images, labels = read_arrays(path, scale, f"cannot load data set {name!r} from {path}")
    test, valid, train = stratified_split(labels, (test_fraction, valid_fraction), split_seed)
    info = {
        "source": filename if root is None else str(root),
        "split": f"stratified by class with seed {split_seed}: test {test_fraction:g}, "
                 f"valid {valid_fraction:g}, train the rest",
    }
    x = torch.from_numpy(images).unsqueeze(1)
    return make_splits(name, x, torch.from_numpy(labels), {"train": train, "valid": valid, "test": test},
                       scale=scale, num_classes=int(labels.max()) + 1, info=info)


def read_arrays(path: Path | Any, scale: float, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``images`` (N x H x W numbers in ``[0, scale]``) and ``labels`` (N integers from 0, two classes
    or more) of an ``.npz`` file, checked: :class:`ConfigError` (``where: what is wrong``)."""
    archive = np.load(path, allow_pickle=False)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"{where}: one array, not an .npz archive of 'images' and 'labels'")
    with archive:
        missing = sorted({"images", "labels"} - set(archive.files))
        if missing:
            raise ConfigError(f"{where}: no array {' or '.join(map(repr, missing))} (it holds: "
                              f"{', '.join(archive.files) or 'nothing'})")
        images, labels = np.asarray(archive["images"]), np.asarray(archive["labels"])
    numeric = np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
    if images.ndim != 3 or not numeric or images.dtype == np.bool_ or 0 in images.shape:
        raise ConfigError(f"{where}: images must be a non-empty N x H x W array of numbers, got {images.dtype} "
                          f"of shape {list(images.shape)}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise ConfigError(f"{where}: labels must be {len(images)} integers (one per image), got {labels.dtype} "
                          f"of shape {list(labels.shape)}")
    if labels.min() < 0 or len(np.unique(labels)) < 2:
        raise ConfigError(f"{where}: labels must be class numbers from 0 with two classes or more, got "
                          f"{sorted(set(np.unique(labels).tolist()))[:10]}")
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > scale:
        raise ConfigError(f"{where}: pixel values must lie in [0, {scale:g}] for this data set, got "
                          f"{images.min()} to {images.max()}")
    return images, labels.astype(np.int64)


def load_digits(root: str | Path | None = None, *, valid_fraction: float = 0.2, test_fraction: float = 0.2,
                split_seed: int = 0) -> DatasetSplits:
    """The shipped UCI 8x8 digits (see :func:`load_shipped`)."""
    return load_shipped("digits", root, valid_fraction=valid_fraction, test_fraction=test_fraction,
                        split_seed=split_seed)


def load_mnist5k(root: str | Path | None = None, *, valid_fraction: float = 0.2, test_fraction: float = 0.2,
                 split_seed: int = 0) -> DatasetSplits:
    """The shipped 5,000-image MNIST subset (see :func:`load_shipped`)."""
    return load_shipped("mnist5k", root, valid_fraction=valid_fraction, test_fraction=test_fraction,
                        split_seed=split_seed)
