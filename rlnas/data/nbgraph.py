"""The NAS-Bench-Graph table shipped with rlnas (``nbgraph.npz``), loaded once and cached.

All 26,206 representative architectures of NAS-Bench-Graph (light version), sorted by the
benchmark's key, for 9 graph data sets (proteins: 2,021 of them, NaN elsewhere). Provenance,
columns and how to rebuild the file: ``NBGRAPH.md`` next to this module. Performances are
fractions (0-1) as stored by the benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rlnas.data.npz_table import read_npz_table

NBGRAPH_TABLE_PATH = Path(__file__).with_name("nbgraph.npz")
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class NBGraphTable:
    """Read-only arrays of the shipped table; row ``d`` of a per-dataset array is ``datasets[d]``."""

    datasets: tuple[str, ...]
    """Data set names (sorted)."""
    key: np.ndarray
    """(26206,) benchmark key of every column, ascending."""
    valid_perf: np.ndarray
    """(9, 26206) validation performance (accuracy; proteins: ROC-AUC), NaN where not trained."""
    test_perf: np.ndarray
    """(9, 26206) test performance, the number to report."""
    latency_s: np.ndarray
    """(9, 26206) the benchmark's ``latency`` (seconds per inference, by its magnitude)."""
    params_m: np.ndarray
    """(9, 26206) the benchmark's ``para`` (millions of parameters, by its magnitude)."""
    column: dict[int, int]
    """Benchmark key -> column."""

    def __len__(self) -> int:
        return len(self.key)

    def dataset_row(self, dataset: str) -> int:
        """Row of ``dataset``; raises ``KeyError`` for an unknown name."""
        try:
            return self.datasets.index(dataset)
        except ValueError:
            raise KeyError(dataset) from None


@lru_cache(maxsize=4)
def load_nbgraph_table(path: str | Path | None = None) -> NBGraphTable:
    """The NAS-Bench-Graph table (cached per path; arrays are read-only).

    ``path`` defaults to the ``nbgraph.npz`` shipped in this package; pass another file written
    by ``scripts/build_nbgraph_table.py`` to use it instead.
    """
    data = read_npz_table(NBGRAPH_TABLE_PATH if path is None else path, FORMAT_VERSION, "NAS-Bench-Graph")
    key = data["key"]
    return NBGraphTable(
        datasets=tuple(data["datasets"].tolist()), key=key,
        valid_perf=data["valid_perf"], test_perf=data["test_perf"],
        latency_s=data["latency_s"], params_m=data["params_m"],
        column={int(k): i for i, k in enumerate(key.tolist())},
    )
