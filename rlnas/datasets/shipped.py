"""The two image sets shipped in ``rlnas/data``: UCI 8x8 digits and a 5,000-image MNIST subset."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import torch

from rlnas.datasets.base import DatasetSplits, make_splits, stratified_split

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
    with np.load(path, allow_pickle=False) as archive:
        images = np.asarray(archive["images"])
        labels = np.asarray(archive["labels"]).astype(np.int64)
    test, valid, train = stratified_split(labels, (test_fraction, valid_fraction), split_seed)
    info = {
        "source": filename if root is None else str(root),
        "split": f"stratified by class with seed {split_seed}: test {test_fraction:g}, "
                 f"valid {valid_fraction:g}, train the rest",
    }
    x = torch.from_numpy(images).unsqueeze(1)
    return make_splits(name, x, torch.from_numpy(labels), {"train": train, "valid": valid, "test": test},
                       scale=scale, num_classes=int(labels.max()) + 1, info=info)


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
