"""CIFAR-10 in its official "python version" format, read without unpickling.

The official batches (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) are Python-2
pickles of dicts with byte-string keys: ``b"data"`` a uint8 array ``[N, 3072]`` (1024 red, then
1024 green, then 1024 blue values of a 32x32 image, row-major) and ``b"labels"`` a list of ints.
Unpickling runs whatever a crafted file names, and even NumPy's own constructors can build an
object array over bytes the file controls, so the batches are parsed by
:func:`rlnas.datasets.plain_pickle.load_plain`, which builds only plain data and numeric arrays;
anything else is refused with a :class:`ConfigError`.
"""
from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from rlnas.datasets.base import DatasetSplits, make_splits, stratified_split, stratified_subset
from rlnas.datasets.plain_pickle import load_plain
from rlnas.errors import ConfigError

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
ARCHIVE = "cifar-10-python.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` int64 (0..9) of one pickled batch."""
    try:
        batch = load_plain(data)
    except ConfigError as err:
        raise ConfigError(f"{where} is not a CIFAR python batch: {err}") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ConfigError(f"{where} is not a CIFAR python batch (needs keys b'data' and b'labels')")
    images, labels = batch[b"data"], batch[b"labels"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise ConfigError(f"{where}: b'data' must be a uint8 array, got {_describe(images)}")
    if not (isinstance(labels, list) and all(isinstance(x, int) and 0 <= x < 10 for x in labels)):
        raise ConfigError(f"{where}: b'labels' must be a list of ints 0..9")
    if images.ndim != 2 or images.shape[1] != 3072 or images.shape[0] != len(labels):
        raise ConfigError(f"{where}: data of shape {images.shape} with {len(labels)} labels, "
                          "expected [N, 3072] and N labels")
    return images.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array"
    return f"a {type(value).__name__}"


def _batch_reader(root: Path) -> Callable[[str], bytes]:
    """A function ``name -> bytes`` over a batches directory or a ``cifar-10-python.tar.gz`` (or a
    folder holding only that archive, as downloaded)."""
    if not root.exists():
        raise ConfigError(f"CIFAR-10 data_root {root} does not exist (give the folder of its python batches, or "
                          "cifar-10-python.tar.gz)")
    archive_in_folder = root / ARCHIVE
    if root.is_dir() and not (root / TEST_BATCH).is_file() and archive_in_folder.is_file():
        root = archive_in_folder
    if root.is_file() and tarfile.is_tarfile(root):
        wanted = {*TRAIN_BATCHES, TEST_BATCH}
        with tarfile.open(root) as archive:
            found = {Path(m.name).name: archive.extractfile(m).read()  # type: ignore[union-attr]
                     for m in archive.getmembers() if m.isfile() and Path(m.name).name in wanted}

        def read_tar(name: str) -> bytes:
            if name not in found:
                raise ConfigError(f"{root} holds no member named {name!r}")
            return found[name]
        return read_tar
    for folder in (root, root / "cifar-10-batches-py"):
        if (folder / TEST_BATCH).is_file():
            return lambda name: _read_file(folder / name)
    raise ConfigError(f"{root} holds no CIFAR-10 python batches "
                      f"(expected {', '.join(TRAIN_BATCHES)} and {TEST_BATCH}, or cifar-10-python.tar.gz)")


def _read_file(path: Path) -> bytes:
    if not path.is_file():
        raise ConfigError(f"missing CIFAR-10 batch {path}")
    return path.read_bytes()


def load_cifar10(root: str | Path | None, *, valid_fraction: float = 0.1, split_seed: int = 0,
                 train_size: int | None = None) -> DatasetSplits:
    """CIFAR-10 from ``root``: train and valid from the five train batches, test = ``test_batch``.

    The valid split is a class-stratified ``valid_fraction`` of the 50,000 train images (seeded
    by ``split_seed``); ``train_size`` keeps a stratified subset of the remaining train images.
    """
    if root is None:
        raise ConfigError("cifar10 needs data_root: the directory of the python batches "
                          "(data_batch_1..5, test_batch) or the cifar-10-python.tar.gz archive")
    root = Path(root).expanduser()
    read = _batch_reader(root)
    parts = [read_batch(read(name), f"{root}/{name}") for name in TRAIN_BATCHES]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    test_images, test_labels = read_batch(read(TEST_BATCH), f"{root}/{TEST_BATCH}")
    if isinstance(train_size, bool) or not (train_size is None or isinstance(train_size, int) and train_size > 0):
        raise ConfigError(f"cifar10: train_size must be a positive integer (images kept of the train split), "
                          f"got {train_size!r}")
    if len(np.unique(labels)) < 2:
        raise ConfigError(f"cifar10 from {root}: the train batches hold one class only ({int(labels[0])}); "
                          "a classifier needs two or more")
    valid, train = stratified_split(labels, (valid_fraction,), split_seed)
    if train_size is not None and train_size < len(train):
        train = train[stratified_subset(labels[train], train_size, split_seed + 1)]
    info = {"source": str(root), "classes": list(CIFAR10_CLASSES),
            "split": f"test = test_batch; valid = stratified {valid_fraction:g} of the train batches "
                     f"(seed {split_seed}); train = the rest" + (f", subset of {train_size}" if train_size else "")}
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    return make_splits("cifar10", x, y, {"train": train, "valid": valid, "test": None}, scale=255.0,
                       num_classes=10, info=info,
                       extra={"test": (torch.from_numpy(test_images), torch.from_numpy(test_labels))})
