#!/usr/bin/env python
"""Regenerate ``rlnas/data/nbgraph.npz``, the trimmed NAS-Bench-Graph table shipped with rlnas.

Reads ``nasbench_graph_light.csv.gz`` of ``shared/data/nasbench_graph`` (see the SOURCE.md
there) with the standard library, checks every row (link pattern, operations, key = the
benchmark's hash of them, 26,206 architectures per data set, 2,021 for proteins), and writes
one ``.npz`` that ``numpy.load(..., allow_pickle=False)`` reads: one column per architecture
(sorted by key), one row per data set, NaN where a data set lacks an architecture. Values are
float64, bit for bit as parsed from the CSV. The zip has fixed timestamps, so running this
script twice gives the same bytes.

Usage::

    python scripts/build_nbgraph_table.py [CSV] [--out PATH]

``CSV`` defaults to ``../shared/data/nasbench_graph/nasbench_graph_light.csv.gz`` relative to
the repository root.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "nasbench_graph" / "nasbench_graph_light.csv.gz"
DEFAULT_OUTPUT = REPO / "rlnas" / "data" / "nbgraph.npz"
FORMAT_VERSION = 1
LINKS = ("0000", "0001", "0011", "0012", "0013", "0111", "0112", "0122", "0123")
OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
METRICS = {"valid_perf": "valid_perf", "test_perf": "test_perf", "latency_s": "latency_s", "params_m": "params_m"}


def parse(path: Path) -> tuple[list[str], dict[str, dict[int, list[float]]]]:
    """Data sets in order of appearance and ``{dataset: {key: [metric values]}}``; checks every row."""
    datasets: list[str] = []
    values: dict[str, dict[int, list[float]]] = {}
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.DictReader(f)
        for n, row in enumerate(reader, start=2):
            link, ops = row["link"].replace(" ", ""), row["ops"].split()
            if link not in LINKS or len(ops) != 4 or any(op not in OPS for op in ops):
                raise SystemExit(f"{path.name} line {n}: bad link {row['link']!r} or ops {row['ops']!r}")
            key = int(row["key"])
            expected = LINKS.index(link)
            for op in ops:
                expected = expected * 10 + OPS.index(op)
            if key != expected:
                raise SystemExit(f"{path.name} line {n}: key {key} does not encode {link} {ops} ({expected})")
            dataset = row["dataset"]
            if dataset not in values:
                datasets.append(dataset)
                values[dataset] = {}
            if key in values[dataset]:
                raise SystemExit(f"{path.name} line {n}: key {key} repeated for {dataset}")
            values[dataset][key] = [float(row[column]) for column in METRICS.values()]
    return datasets, values


def build(path: Path, check_counts: bool = True) -> dict[str, np.ndarray]:
    """The arrays of the shipped table (``check_counts=False`` for a partial file, e.g. a test fixture)."""
    datasets, values = parse(path)
    keys = sorted(set().union(*values.values()))
    for dataset in datasets if check_counts else ():
        expected = 2021 if dataset == "proteins" else 26206
        if len(values[dataset]) != expected:
            raise SystemExit(f"{dataset}: {len(values[dataset])} architectures, expected {expected}")
    if check_counts and len(keys) != 26206:
        raise SystemExit(f"{len(keys)} distinct architectures, expected 26206")
    column = {key: i for i, key in enumerate(keys)}
    arrays: dict[str, np.ndarray] = {"format_version": np.array(FORMAT_VERSION),
                                     "datasets": np.array(sorted(datasets)),
                                     "key": np.array(keys, dtype=np.int32)}
    for m, name in enumerate(METRICS):
        table = np.full((len(datasets), len(keys)), np.nan)
        for d, dataset in enumerate(sorted(datasets)):
            for key, row in values[dataset].items():
                table[d, column[key]] = row[m]
        arrays[name] = table
    return arrays


def write_npz(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write ``arrays`` as a deterministic compressed ``.npz`` (fixed member timestamps)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.require(array, requirements="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_INPUT,
                        help="nasbench_graph_light.csv.gz (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help="output .npz (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.csv.is_file():  # e.g. a clone without ../shared: say what is missing, as build_nb201_table.py does
        raise SystemExit(f"missing input file {args.csv} (the NAS-Bench-Graph CSV: see rlnas/data/NBGRAPH.md)")
    arrays = build(args.csv)
    write_npz(arrays, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(arrays)} arrays)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
