#!/usr/bin/env python
"""Regenerate ``rlnas/data/nb201.npz``, the trimmed NAS-Bench-201 table shipped with rlnas.

Reads the gzip'd CSVs of ``shared/data/nasbench201`` (see the SOURCE.md there) with the
standard library, checks that every file lists the 15,625 cells in the same official order,
and writes one ``.npz`` that ``numpy.load(..., allow_pickle=False)`` reads. Values are kept as
float64, bit for bit as parsed from the CSVs, with two corrections: the cells whose source
``params`` contradict the closed form get the closed form (``params_from_closed_form``), and
among them those whose training time is an outlier next to the cells with the same edge counts
get their peers' median time (``train_time_estimated``). The zip is written with fixed
timestamps, so running this script twice gives the same bytes; the list of corrected cells is
written into the "Corrected cells" section of ``rlnas/data/NB201.md``.

Usage::

    python scripts/build_nb201_table.py [INPUT_DIR] [--out PATH]

``INPUT_DIR`` defaults to ``../shared/data/nasbench201`` relative to the repository root.
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
DEFAULT_INPUT = REPO.parent / "shared" / "data" / "nasbench201"
DEFAULT_OUTPUT = REPO / "rlnas" / "data" / "nb201.npz"
DEFAULT_DOC = REPO / "rlnas" / "data" / "NB201.md"
DOC_START, DOC_END = "<!-- corrections: written by scripts/build_nb201_table.py -->", "<!-- end of corrections -->"

N_CELLS = 15625
FORMAT_VERSION = 2
DATASETS = ("cifar10", "cifar100", "imagenet16-120")
NUM_CLASSES = (10, 100, 120)
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# Closed-form parameter count of the NB201 network (C=16, N=5): with no conv edge and a 10-class
# head it has 73,306 parameters; a 3x3 conv edge adds 243,040 and a 1x1 conv edge 28,000 (one per
# cell, 15 cells); every further class adds 65 (64 weights and a bias).
BASE_PARAMS, CONV3_PARAMS, CONV1_PARAMS, PER_CLASS = 73_306, 243_040, 28_000, 65
ROBUST_Z_LIMIT = 3.5
"""A training time whose modified z-score (0.6745 (t - median) / MAD over its peers) exceeds this is an outlier."""
SEED_LABELS = (777, 888, 999)

ACC200 = "nb201_acc200_nb201v11.csv.gz"
TEST200 = "nb201_test200_nats.csv.gz"
ACC12 = "nb201_acc12_nb201v11.csv.gz"
COST = "nb201_cost_nats.csv.gz"
PERSEED = "nb201_perseed200_nats.csv.gz"
LATENCY = "nb201_latency_help.csv.gz"

# array name -> (source file, source column) for each dataset, in DATASETS order.
PER_DATASET: dict[str, tuple[tuple[str, str], ...]] = {
    "valid_acc": ((ACC200, "c10v_valid_acc"), (ACC200, "c100_valid_acc"), (ACC200, "in16_valid_acc")),
    # The reported test accuracy: cifar10 trained on all 50k images (NATS), the others NB201 v1_1.
    "test_acc": ((TEST200, "c10_test_acc"), (ACC200, "c100_test_acc"), (ACC200, "in16_test_acc")),
    "valid_acc_12ep": ((ACC12, "c10v_valid_acc_12ep"), (ACC12, "c100_valid_acc_12ep"), (ACC12, "in16_valid_acc_12ep")),
    "test_acc_12ep": ((ACC12, "c10_test_acc_12ep"), (ACC12, "c100_test_acc_12ep"), (ACC12, "in16_test_acc_12ep")),
    "params_m": ((COST, "params_mb_c10"), (COST, "params_mb_c100"), (COST, "params_mb_in16")),
    "train_time_s": ((COST, "train_time_s_c10v"), (COST, "train_time_s_c100"), (COST, "train_time_s_in16")),
}
SEED_COLUMNS = ("c10v_valid_acc", "c100_valtest_acc", "in16_valtest_acc")


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a gzip'd CSV."""
    if not path.is_file():
        raise SystemExit(f"missing input file {path}")
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, list(reader)


def column(header: list[str], rows: list[list[str]], name: str, path: Path) -> np.ndarray:
    """Column ``name`` parsed as float64."""
    if name not in header:
        raise SystemExit(f"{path.name} has no column {name!r}")
    j = header.index(name)
    return np.array([float(r[j]) for r in rows], dtype=np.float64)


def check_cells(header: list[str], rows: list[list[str]], path: Path, arch: list[str] | None) -> list[str]:
    """Check the official index order 0..15624 and that arch strings agree with ``arch``."""
    if header[:2] != ["index", "arch_str"]:
        raise SystemExit(f"{path.name}: expected the columns to start with index, arch_str")
    if len(rows) != N_CELLS or [int(r[0]) for r in rows] != list(range(N_CELLS)):
        raise SystemExit(f"{path.name}: expected rows for indices 0..{N_CELLS - 1} in order")
    strings = [r[1] for r in rows]
    if arch is not None and strings != arch:
        raise SystemExit(f"{path.name}: arch strings disagree with the other files")
    return strings


def build(input_dir: Path) -> dict[str, np.ndarray]:
    """All arrays of the shipped table, keyed by their name in the ``.npz``."""
    arch: list[str] | None = None
    tables: dict[str, tuple[list[str], list[list[str]]]] = {}
    for name in (ACC200, TEST200, ACC12, COST, LATENCY):
        header, rows = read_csv(input_dir / name)
        arch = check_cells(header, rows, input_dir / name, arch)
        tables[name] = (header, rows)
    assert arch is not None

    def stacked(sources: tuple[tuple[str, str], ...]) -> np.ndarray:
        return np.stack([column(*tables[f], c, input_dir / f) for f, c in sources])

    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "arch_str": np.array(arch, dtype=f"<U{max(len(a) for a in arch)}"),
        "datasets": np.array(DATASETS),
    }
    arrays.update({key: stacked(sources) for key, sources in PER_DATASET.items()})
    n_seeds = column(*tables[COST], "n_seeds", input_dir / COST).astype(np.int8)
    arrays["seed_acc"], arrays["n_seeds"] = per_seed(input_dir / PERSEED, n_seeds)
    arrays["seed_labels"] = np.array(SEED_LABELS, dtype=np.int64)

    devices = tables[LATENCY][0][2:]
    arrays["latency_devices"] = np.array(devices)
    arrays["latency_ms"] = stacked(tuple((LATENCY, d) for d in devices))

    counts = [op_counts(a) for a in arch]
    arrays["params_from_closed_form"] = correct_params(arrays["params_m"], counts)
    arrays["train_time_estimated"] = estimate_outlier_times(arrays["train_time_s"], counts,
                                                            arrays["params_from_closed_form"])
    return arrays


def op_counts(arch_str: str) -> tuple[int, ...]:
    """How many of the cell's six edges hold each operation of ``OPS``."""
    ops = [token.split("~")[0] for node in arch_str.strip("|").split("|+|") for token in node.split("|")]
    if len(ops) != 6 or not set(ops) <= set(OPS):
        raise SystemExit(f"cannot read the operations of cell {arch_str!r}")
    return tuple(ops.count(op) for op in OPS)


def closed_form_params(counts: tuple[int, ...], num_classes: int) -> int:
    """Parameters of the NB201 network of a cell with these operation counts."""
    return (BASE_PARAMS + PER_CLASS * (num_classes - 10) + CONV3_PARAMS * counts[OPS.index("nor_conv_3x3")]
            + CONV1_PARAMS * counts[OPS.index("nor_conv_1x1")])


def correct_params(params_m: np.ndarray, counts: list[tuple[int, ...]]) -> np.ndarray:
    """Replace (in place) source params that contradict the closed form; return which cells changed.

    The wrong cells must be the same for every data set (the source's params field is per cell).
    """
    closed = np.array([[closed_form_params(c, k) for c in counts] for k in NUM_CLASSES], dtype=np.int64)
    wrong = np.round(params_m * 1e6).astype(np.int64) != closed
    if not (wrong == wrong[0]).all():
        raise SystemExit("params contradict the closed form for different cells in different data sets")
    params_m[:, wrong[0]] = closed[:, wrong[0]] / 1e6
    return wrong[0]


def estimate_outlier_times(times: np.ndarray, counts: list[tuple[int, ...]], suspect: np.ndarray) -> np.ndarray:
    """Check the ``suspect`` cells' training times against the other cells with the same operation
    counts; replace (in place) outliers by their peers' median and return where that happened."""
    peers: dict[tuple[int, ...], list[int]] = {}
    for i, c in enumerate(counts):
        if not suspect[i]:
            peers.setdefault(c, []).append(i)
    estimated = np.zeros(times.shape, dtype=bool)
    for d in range(times.shape[0]):
        for i in np.flatnonzero(suspect):
            peer_times = times[d, peers[counts[i]]]
            median = np.median(peer_times)
            mad = np.median(np.abs(peer_times - median))
            if abs(0.6745 * (times[d, i] - median)) > ROBUST_Z_LIMIT * mad:
                times[d, i] = median
                estimated[d, i] = True
    return estimated


def corrections_markdown(arrays: dict[str, np.ndarray], source_times: np.ndarray) -> str:
    """The "Corrected cells" section of NB201.md (between its markers), from the built arrays."""
    fixed = np.flatnonzero(arrays["params_from_closed_form"])
    estimated = np.flatnonzero(arrays["train_time_estimated"].any(axis=0))
    lines = [
        DOC_START,
        f"**{len(fixed)} cells** take `params_m` from the closed form (`params_from_closed_form`); their",
        "source value was off by one conv edge. Their indices:",
        "",
        ", ".join(str(i) for i in fixed) + ".",
        "",
        (f"Of these, **{len(estimated)} cells** have a training time that is an outlier next to the cells "
         f"with the same operation counts (modified z-score above {ROBUST_Z_LIMIT}); their `train_time_s` "
         "(and so the evaluator's `cost_seconds`) is the peers' median and marked in `train_time_estimated`:"),
        "",
        "| index | cell | " + " | ".join(f"{d}: source → estimate (s)" for d in DATASETS) + " |",
        "|---|---|" + "---|" * len(DATASETS),
    ]
    for i in estimated:
        cell = arrays["arch_str"][i].replace("|", "\\|")
        times = [f"{source_times[d, i]:.1f} → {arrays['train_time_s'][d, i]:.1f}"
                 if arrays["train_time_estimated"][d, i] else "unchanged" for d in range(len(DATASETS))]
        lines.append(f"| {i} | `{cell}` | " + " | ".join(times) + " |")
    lines.append(DOC_END)
    return "\n".join(lines)


def write_doc_section(doc: Path, section: str) -> None:
    """Replace the text between the markers in ``doc`` by ``section``."""
    text = doc.read_text(encoding="utf-8")
    start, end = text.find(DOC_START), text.find(DOC_END)
    if start < 0 or end < start:
        raise SystemExit(f"{doc} has no corrections markers")
    doc.write_text(text[:start] + section + text[end + len(DOC_END):], encoding="utf-8")


def per_seed(path: Path, n_seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed accuracies as ``(3 datasets, cells, 3 seeds)`` padded with NaN, and the counts."""
    header, rows = read_csv(path)
    if header[:2] != ["index", "seed"]:
        raise SystemExit(f"{path.name}: expected the columns to start with index, seed")
    cols = [header.index(c) for c in SEED_COLUMNS]
    out = np.full((len(DATASETS), N_CELLS, len(SEED_LABELS)), np.nan, dtype=np.float64)
    count = np.zeros(N_CELLS, dtype=np.int8)
    previous = -1
    for r in rows:
        i, seed = int(r[0]), int(r[1])
        if i < previous or not 0 <= i < N_CELLS:
            raise SystemExit(f"{path.name}: index {i} out of order")
        previous = i
        if seed != SEED_LABELS[count[i]]:
            raise SystemExit(f"{path.name}: cell {i} lists seed {seed}, expected {SEED_LABELS[count[i]]}")
        for d, j in enumerate(cols):
            out[d, i, count[i]] = float(r[j])
        count[i] += 1
    if not np.array_equal(count, n_seeds):
        raise SystemExit(f"{path.name}: seed counts disagree with n_seeds of the cost file")
    return out, count


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
    parser.add_argument("input_dir", nargs="?", type=Path, default=DEFAULT_INPUT,
                        help="folder holding the nb201_*.csv.gz files (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help="output .npz (default: %(default)s)")
    parser.add_argument("--doc", type=Path, default=DEFAULT_DOC,
                        help="markdown file whose corrections section is rewritten (default: %(default)s)")
    args = parser.parse_args(argv)
    arrays = build(args.input_dir)
    write_npz(arrays, args.out)
    source_times = np.stack([column(*read_csv(args.input_dir / COST), c, args.input_dir / COST)
                             for _, c in PER_DATASET["train_time_s"]])
    write_doc_section(args.doc, corrections_markdown(arrays, source_times))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(arrays)} arrays)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
