"""The NAS-Bench-201 table shipped with rlnas (``nb201.npz``), loaded once and cached.

All 15,625 cells in the official NAS-Bench-201 / NATS-tss index order, for the datasets
``cifar10``, ``cifar100`` and ``imagenet16-120``. Provenance, columns and how to rebuild the
file: ``NB201.md`` next to this module. Accuracies are in percent (0-100).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rlnas.data.npz_table import read_npz_table
from rlnas.errors import InvalidCandidate

NB201_TABLE_PATH = Path(__file__).with_name("nb201.npz")
FORMAT_VERSION = 2


@dataclass(frozen=True, eq=False)
class NB201Table:
    """Read-only arrays of the shipped table; row ``d`` of a per-dataset array is ``datasets[d]``."""

    arch_str: tuple[str, ...]
    """Official cell string of every index (``arch_str[i]`` is cell ``i``)."""
    datasets: tuple[str, ...]
    """Dataset names, in the row order of the per-dataset arrays."""
    valid_acc: np.ndarray
    """(3, 15625) 200-epoch validation accuracy, seed mean (cifar10: the cifar10-valid split)."""
    test_acc: np.ndarray
    """(3, 15625) 200-epoch test accuracy, seed mean: the number to report (cifar10: trained on 50k)."""
    valid_acc_12ep: np.ndarray
    """(3, 15625) validation accuracy of the separate 12-epoch schedule, seed mean."""
    test_acc_12ep: np.ndarray
    """(3, 15625) test accuracy of the 12-epoch schedule, seed mean."""
    params_m: np.ndarray
    """(3, 15625) millions of parameters (datasets differ only by the classifier)."""
    train_time_s: np.ndarray
    """(3, 15625) simulated seconds to train 200 epochs on the benchmark authors' GPUs."""
    params_from_closed_form: np.ndarray
    """(15625,) bool: the source's params contradicted the closed form, which ``params_m`` holds instead."""
    train_time_estimated: np.ndarray
    """(3, 15625) bool: ``train_time_s`` is the median of the cells with the same operation counts
    (the source's time was an outlier for a cell whose params were wrong; see NB201.md)."""
    seed_acc: np.ndarray
    """(3, 15625, 3) per-seed 200-epoch accuracy, NaN-padded: cifar10 valid, cifar100/ImageNet valtest."""
    n_seeds: np.ndarray
    """(15625,) number of seeds present in ``seed_acc`` (2 or 3)."""
    seed_labels: tuple[int, ...]
    """Seed label of each ``seed_acc`` slot (777, 888, 999)."""
    latency_devices: tuple[str, ...]
    """Names of the HELP latency columns (batch-size suffix on GPU names)."""
    latency_ms: np.ndarray
    """(devices, 15625) inference latency in milliseconds, CIFAR-10 input."""
    index: dict[str, int]
    """Arch string -> official index."""

    def __len__(self) -> int:
        return len(self.arch_str)

    def __repr__(self) -> str:
        return (f"NB201Table({len(self)} cells, datasets={list(self.datasets)}, "
                f"{len(self.latency_devices)} latency devices)")

    def index_of(self, arch_str: str) -> int:
        """Official index of ``arch_str``; raises :class:`InvalidCandidate` for an unknown string."""
        try:
            return self.index[arch_str]
        except (KeyError, TypeError):
            raise InvalidCandidate(f"{arch_str!r} is not a NAS-Bench-201 arch string") from None

    def dataset_row(self, dataset: str) -> int:
        """Row of ``dataset`` in the per-dataset arrays; raises ``KeyError`` for an unknown name."""
        try:
            return self.datasets.index(dataset)
        except ValueError:
            raise KeyError(dataset) from None


@lru_cache(maxsize=4)
def load_nb201_table(path: str | Path | None = None) -> NB201Table:
    """The NAS-Bench-201 table (cached per path; arrays are read-only).

    ``path`` defaults to the ``nb201.npz`` shipped in this package; pass another file written
    by ``scripts/build_nb201_table.py`` to use it instead.
    """
    data = read_npz_table(NB201_TABLE_PATH if path is None else path, FORMAT_VERSION, "NB201")
    arch = tuple(data["arch_str"].tolist())
    return NB201Table(
        arch_str=arch,
        datasets=tuple(data["datasets"].tolist()),
        valid_acc=data["valid_acc"],
        test_acc=data["test_acc"],
        valid_acc_12ep=data["valid_acc_12ep"],
        test_acc_12ep=data["test_acc_12ep"],
        params_m=data["params_m"],
        train_time_s=data["train_time_s"],
        params_from_closed_form=data["params_from_closed_form"],
        train_time_estimated=data["train_time_estimated"],
        seed_acc=data["seed_acc"],
        n_seeds=data["n_seeds"],
        seed_labels=tuple(int(s) for s in data["seed_labels"]),
        latency_devices=tuple(data["latency_devices"].tolist()),
        latency_ms=data["latency_ms"],
        index={a: i for i, a in enumerate(arch)},
    )
