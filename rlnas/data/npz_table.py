"""Reading the shipped benchmark tables (``.npz`` files written by ``scripts/build_*_table.py``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def read_npz_table(path: str | Path, format_version: int, what: str) -> dict[str, np.ndarray]:
    """Every array of the table file at ``path``, read-only, once its ``format_version`` array is
    checked against ``format_version`` (else a ``ValueError`` naming ``what``, the table's name)."""
    with np.load(Path(path), allow_pickle=False) as z:
        data = {name: z[name] for name in z.files}
    version = int(data["format_version"])
    if version != format_version:
        raise ValueError(f"{what} table format {version} is not supported (expected {format_version})")
    for array in data.values():
        array.setflags(write=False)
    return data
