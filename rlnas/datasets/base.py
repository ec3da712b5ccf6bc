"""In-memory image data, the train/valid/test bundle, and the seeded stratified split."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from rlnas.errors import ConfigError


class ImageData(Dataset):
    """Images (``N x C x H x W``, any dtype) and int64 labels held in memory.

    Pixels are turned into floats on access: ``(images / scale - mean) / std`` per channel, so
    large sets can stay uint8 in memory. ``batch(index)`` returns a whole batch at once, which is
    much faster than ``DataLoader`` over ``__getitem__`` for in-memory tensors.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, scale: float = 1.0,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        if images.ndim != 4:
            raise ValueError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}")
        channels = images.shape[1]
        self.images = images
        self.labels = labels.to(torch.int64)
        self.scale = float(scale)
        self.mean = torch.tensor(mean if mean is not None else [0.0] * channels, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std if std is not None else [1.0] * channels, dtype=torch.float32).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batch(torch.tensor([i]))
        return x[0], y[0]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalized float32 images and labels at the positions ``index``."""
        return self._normalize(self.images[index]), self.labels[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images (normalized float32) and labels."""
        return self._normalize(self.images), self.labels

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(torch.float32) / self.scale - self.mean) / self.std


@dataclass(frozen=True)
class DatasetSplits:
    """The three splits of a data set, all normalized with the train split's channel statistics."""

    name: str
    """Data set name as given to ``load_dataset``."""
    train: ImageData
    """Images the child network is trained on."""
    valid: ImageData
    """Held-out images whose accuracy is the search signal."""
    test: ImageData
    """Images whose accuracy is only reported."""
    num_classes: int
    """Number of label values (labels are ``0 .. num_classes - 1``)."""
    info: dict[str, Any] = field(default_factory=dict)
    """JSON-able description: sizes, how the split was made, class names."""

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of one image."""
        return tuple(int(s) for s in self.train.images.shape[1:])  # type: ignore[return-value]

    @cached_property
    def fingerprint(self) -> str:
        """A digest (BLAKE2b, 16 hex digits) of every image and label of the three splits, as loaded:
        the same for the same data wherever they lie, different when an image, a label or the split
        changes. Computed once (a fraction of a second for CIFAR-10)."""
        digest = hashlib.blake2b(digest_size=8)
        for split in (self.train, self.valid, self.test):
            for tensor in (split.images, split.labels):
                array = tensor.detach().cpu().contiguous().numpy()
                digest.update(f"{array.dtype.str}{array.shape}".encode())
                digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Split positions ``0..N-1`` into ``len(fractions) + 1`` parts with the same class mix.

    For every class its positions are shuffled with ``numpy.random.default_rng(seed)``; the first
    ``round(n_c * fractions[0])`` go to part 0, the next ``round(n_c * fractions[1])`` to part 1,
    ..., the rest to the last part. Each part is returned sorted.
    """
    if any(not 0 <= f < 1 for f in fractions) or sum(fractions) >= 1:
        raise ConfigError(f"split fractions {list(fractions)} must be >= 0 and sum to less than 1")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for cls in np.unique(labels):
        where = np.flatnonzero(labels == cls)
        where = where[rng.permutation(len(where))]
        start = 0
        for k, f in enumerate(fractions):
            n = int(round(len(where) * f))
            parts[k].append(where[start : start + n])
            start += n
        parts[-1].append(where[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Exactly ``size`` positions of ``0..N-1`` (sorted) with the class mix of ``labels``: each class
    gets ``floor(n_c · size / N)``, the positions left over go to the classes with the largest
    remainders (the first classes on ties), and each class's are drawn with
    ``numpy.random.default_rng(seed)``."""
    if not 0 <= size <= len(labels):
        raise ConfigError(f"a subset of {size} from {len(labels)} positions")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * size / len(labels)
    quota = np.floor(exact).astype(np.int64)
    by_remainder = sorted(range(len(classes)), key=lambda c: (-(exact[c] - quota[c]), c))
    quota[by_remainder[: size - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.permutation(np.flatnonzero(labels == cls))[:n] for cls, n in zip(classes, quota)]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def channel_stats(images: torch.Tensor, scale: float) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of ``images / scale`` (std floored at 1e-6)."""
    x = images.to(torch.float64) / scale
    mean = x.mean(dim=(0, 2, 3))
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return [float(m) for m in mean], [float(s) for s in std]


def make_splits(name: str, images: torch.Tensor, labels: torch.Tensor, parts: dict[str, np.ndarray | None],
                *, scale: float, num_classes: int, info: dict[str, Any],
                extra: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None) -> DatasetSplits:
    """Bundle index ``parts`` (train/valid/test) of ``images``; ``extra`` gives ready-made splits.

    Channel statistics come from the train split only.
    """
    def take(key: str) -> tuple[torch.Tensor, torch.Tensor]:
        if extra and key in extra:
            return extra[key]
        idx = torch.as_tensor(parts[key], dtype=torch.int64)
        return images[idx], labels[idx]

    tensors = {k: take(k) for k in ("train", "valid", "test")}
    empty = [k for k, (x, _) in tensors.items() if len(x) == 0]
    if empty:
        sizes = ", ".join(f"{k} {len(x)}" for k, (x, _) in tensors.items())
        raise ConfigError(f"data set {name!r}: the {' and '.join(empty)} split{'s are' if len(empty) > 1 else ' is'} "
                          f"empty ({sizes} images): give more images or other split fractions")
    if any(x.is_floating_point() and not torch.isfinite(x).all() for x, _ in tensors.values()):
        raise ConfigError(f"data set {name!r}: some pixels are NaN or infinite")
    mean, std = channel_stats(tensors["train"][0], scale)
    data = {k: ImageData(x, y, scale=scale, mean=mean, std=std) for k, (x, y) in tensors.items()}
    info = {**info, "sizes": {k: len(v) for k, v in data.items()}, "mean": mean, "std": std}
    return DatasetSplits(name, data["train"], data["valid"], data["test"], num_classes, info)
