"""L²NAS tuning harness: config variants on the tuning seeds, NAS-Bench-201 and NAS-Bench-Graph.

A bare ask/tell loop on the tables (no study, no store): the same trials as
``benchmarks/nb201.py`` for an agent that never repeats an architecture (L²NAS), at a
fraction of the cost, so many variants fit the shared machine. Every run reports the test
accuracy *and* the validation accuracy (the search reward) of the best-by-validation cell
after 50 / 100 / 200 queries and the query at which the validation optimum was found; each
variant is compared with the first one (difference over its Welch standard error).

Tuning seeds only (issue 12): NAS-Bench-201 0-49, NAS-Bench-Graph 0-9.

    python benchmarks/l2nas_tuning.py --variant base:{} --variant 'nolearn:{"learn": false}'
    python benchmarks/l2nas_tuning.py --benchmark nbgraph --seeds 10 --variant base:{} ...
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import _blas_one_thread  # noqa: F401  (one BLAS thread, before NumPy loads)
import numpy as np

DATASETS = {"nb201": ("cifar10", "cifar100", "imagenet16-120"),
            "nbgraph": ("arxiv", "citeseer", "computers", "cora", "cs", "photo", "physics", "proteins", "pubmed")}
POINTS = (50, 100, 200)


@dataclass(frozen=True)
class Table:
    """Validation and test accuracy (percent) of every candidate, by the mixed-radix code of its choice indices
    (NaN: no result, the trial fails), and the code(s) of the validation optimum."""

    valid: np.ndarray
    test: np.ndarray
    optimum: frozenset[int]
    radix: np.ndarray


@cache
def table(benchmark: str, dataset: str) -> tuple[Any, Table]:
    """The space and the :class:`Table` of one data set."""
    if benchmark == "nbgraph":
        from rlnas.errors import InvalidCandidate
        from rlnas.evaluators.nbgraph import NBGraphEvaluator
        ev = NBGraphEvaluator(dataset=dataset)
        space = ev.space
        canon = space.canonical_codes()
        sizes = space.sizes
        n = int(np.prod(sizes))
        valid, test = np.full(n, np.nan), np.full(n, np.nan)
        digits = np.stack(np.unravel_index(np.arange(n), sizes), axis=1)
        for code in np.unique(canon).tolist():  # one look-up per class of equivalent cells
            try:
                col = ev.column_of(space.from_indices(digits[code]))
            except InvalidCandidate:  # no result in the table: the trial fails
                continue
            valid[code], test[code] = 100.0 * ev._valid[col], 100.0 * ev._test[col]
        valid, test = valid[canon], test[canon]
    else:
        from rlnas.evaluators.tabular import NB201Evaluator
        ev = NB201Evaluator(dataset=dataset)
        space = ev.space
        sizes = space.sizes
        n = int(np.prod(sizes))
        digits = np.stack(np.unravel_index(np.arange(n), sizes), axis=1)
        rows = np.array([ev._resolve(space.from_indices(d)) for d in digits])
        valid = np.asarray(ev._reward_array())[rows]
        test = np.asarray(ev.table.test_acc[ev._row])[rows]
    best = np.nanmax(valid)
    radix = np.cumprod((1,) + tuple(sizes[:0:-1]))[::-1].astype(np.int64)
    return space, Table(valid, test, frozenset(np.flatnonzero(valid == best).tolist()), radix)


def run_one(args: tuple[str, str, dict[str, Any], int, int]) -> dict[str, Any]:
    """One L²NAS run: per query the validation and test accuracy (NaN for a failed trial); found-at; CPU seconds."""
    benchmark, dataset, config, seed, queries = args
    from rlnas.agents import create_agent
    space, tab = table(benchmark, dataset)
    agent = create_agent("l2nas", space, config, seed=seed)
    valid, test = np.full(queries, np.nan), np.full(queries, np.nan)
    found = None
    start = time.process_time()
    for q in range(queries):
        (proposal,) = agent.ask()
        code = int(np.asarray(space.indices(proposal.candidate)) @ tab.radix)
        v = tab.valid[code]
        agent.tell([(proposal, None if math.isnan(v) else float(v))])
        valid[q], test[q] = v, tab.test[code]
        if found is None and code in tab.optimum:
            found = q + 1
    return {"valid": valid, "test": test, "found": found, "seconds": time.process_time() - start}


def incumbent(run: Mapping[str, Any], q: int) -> tuple[float, float]:
    """(validation, test) of the best-by-validation cell among the first ``q`` queries (earliest on ties)."""
    v = np.where(np.isnan(run["valid"][:q]), -np.inf, run["valid"][:q])
    i = int(np.argmax(v))
    return float(run["valid"][i]), float(run["test"][i])


def tab_valid(benchmark: str, dataset: str) -> np.ndarray:
    """Validation accuracy of every candidate of a data set."""
    return table(benchmark, dataset)[1].valid


def _welch(a: np.ndarray, b: np.ndarray) -> float:
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if se > 0:
        return (a.mean() - b.mean()) / se
    return 0.0 if a.mean() == b.mean() else math.copysign(99.0, a.mean() - b.mean())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the variants and print one markdown table per data set (and the mean ms per trial)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--benchmark", default="nb201", choices=sorted(DATASETS))
    p.add_argument("--datasets", default=None)
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--variant", action="append", default=[], metavar="NAME:JSON",
                   help="a config override; the first is the reference")
    p.add_argument("--json", type=Path, default=None, help="also write the per-run summaries here")
    a = p.parse_args(argv)
    if a.first_seed + a.seeds > (50 if a.benchmark == "nb201" else 10):
        p.error("tuning seeds only: NB201 0-49, NAS-Bench-Graph 0-9")
    variants = {}
    for item in a.variant or ["base:{}"]:
        name, _, text = item.partition(":")
        variants[name] = json.loads(text or "{}")
    datasets = a.datasets.split(",") if a.datasets else DATASETS[a.benchmark]
    jobs = [(a.benchmark, d, cfg, s, a.queries) for d in datasets for cfg in variants.values()
            for s in range(a.first_seed, a.first_seed + a.seeds)]
    load, start = os.getloadavg()[0], time.perf_counter()
    if a.workers > 1:
        with ProcessPoolExecutor(a.workers, mp_context=get_context("fork")) as pool:
            runs = list(pool.map(run_one, jobs, chunksize=4))
    else:
        runs = [run_one(j) for j in jobs]
    wall = time.perf_counter() - start
    by = {}
    for job, run in zip(jobs, runs):
        by.setdefault((job[1], json.dumps(job[2], sort_keys=True)), []).append(run)
    points = [q for q in POINTS if q <= a.queries]
    print(f"{a.benchmark}, seeds {a.first_seed}-{a.first_seed + a.seeds - 1}, {a.queries} queries; "
          f"{wall:.0f} s on {a.workers} worker(s), load {load:.2f} before, {os.getloadavg()[0]:.2f} after")
    ref = next(iter(variants))
    out = {}
    for d in datasets:
        print(f"\n{d}: test (valid) of the best-by-validation cell, mean; [diff vs {ref} in SE, test/valid]; found")
        for name, cfg in variants.items():
            group = by[(d, json.dumps(cfg, sort_keys=True))]
            refg = by[(d, json.dumps(variants[ref], sort_keys=True))]
            cells = []
            for q in points:
                vt = np.array([incumbent(r, q) for r in group])
                rt = np.array([incumbent(r, q) for r in refg])
                cell = f"{vt[:, 1].mean():.2f} ({vt[:, 0].mean():.2f})"
                if name != ref:
                    cell += f" [{_welch(vt[:, 1], rt[:, 1]):+.1f}/{_welch(vt[:, 0], rt[:, 0]):+.1f}]"
                cells.append(cell)
            found = [r["found"] for r in group if r["found"] is not None]
            best = max(np.nanmax(tab_valid(a.benchmark, d)), 0)
            auc = np.mean([best - np.fmax.accumulate(np.nan_to_num(r["valid"], nan=-np.inf))[24:].mean()
                           for r in group])  # mean validation regret over queries 25..end
            found_at = np.mean([r["found"] or a.queries + 1 for r in group])
            ms = 1000 * np.mean([r["seconds"] for r in group]) / a.queries
            print(f"  {name:24s} " + "  ".join(cells) + f"  found {len(found)}/{len(group)} at {found_at:.0f}"
                  f"  regret {auc:.3f}  {ms:.1f} ms/q (CPU)")
            out[f"{d}/{name}"] = {"test": [[incumbent(r, q)[1] for q in points] for r in group],
                                  "valid": [[incumbent(r, q)[0] for q in points] for r in group],
                                  "found": [r["found"] for r in group]}
    if a.json:
        a.json.write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
