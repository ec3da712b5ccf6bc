"""Small data sets on disk in real formats, for tests that need files a user would have."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

CIFAR_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def write_fake_cifar10(folder: str | Path, *, per_batch: int = 10, seed: int = 0) -> Path:
    """Write the six CIFAR-10 python batches (random 32x32 pixels, labels cycling 0..9) to
    ``folder`` in the official format (protocol-2 pickles of byte-keyed dicts); return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in CIFAR_BATCHES:
        batch = {b"batch_label": name.encode(), b"labels": [i % 10 for i in range(per_batch)],
                 b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
                 b"filenames": [f"img{i}.png".encode() for i in range(per_batch)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder
