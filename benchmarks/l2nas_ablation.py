"""L²NAS ablation on NAS-Bench-201: which part of the method produces the result.

Runs ``benchmarks/nb201.py``'s search loop (protocol 200, test accuracy of the
best-by-validation cell) for the full agent and for variants that each remove one part.
Every variant is the default config plus the override shown. Seeds start at ``--first-seed``
(default 50: seeds the defaults were not tuned on).

    python benchmarks/l2nas_ablation.py                      # 20 seeds, 200 queries, 2 workers
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _nb201_report as report
import nb201

VARIANTS: dict[str, tuple[dict, str]] = {
    "full": ({}, "the defaults"),
    "learn=false": ({"learn": False}, "top-K local search: no training, no critic ranking"),
    "train_actor=false": ({"train_actor": False}, "critic trained and ranking; actor stays at the top-K mode"),
    "pool=1": ({"pool": 1}, "critic ranks only the new architectures of the nearest noise level"),
    "quantile=0.5": ({"quantile": 0.5}, "critic predicts the median instead of the 0.75 quantile"),
    "top_share=0": ({"top_share": 0.0}, "batches drawn uniformly, not favouring the top samples"),
}
POINTS = (50, 100, 200)


def main(argv: list[str] | None = None) -> int:
    """Run every variant and print the table (markdown)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20, help="runs per variant and data set")
    p.add_argument("--first-seed", type=int, default=50, help="first seed (0-49 tuned the defaults)")
    p.add_argument("--queries", type=int, default=200, help="queries per run")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    a = p.parse_args(argv)
    if a.seeds < 2 or a.queries < 1 or a.workers < 1:
        p.error("--seeds must be at least 2 (the table shows standard errors); --queries and --workers positive")
    jobs = [nb201.Job("l2nas", dataset, 200, seed, n_trials=a.queries, budget_seconds=None, agent_config=config)
            for config, _ in VARIANTS.values() for dataset in nb201.DATASETS
            for seed in range(a.first_seed, a.first_seed + a.seeds)]
    load, start = os.getloadavg()[0], time.perf_counter()
    runs = nb201.run_jobs(jobs, a.workers, log=lambda *_: None)
    points = [q for q in POINTS if q < a.queries] + [a.queries]  # the whole budget is always a column
    print(f"{a.seeds} seeds ({a.first_seed}-{a.first_seed + a.seeds - 1}) per variant and data set, "
          f"{a.queries} queries; "
          f"{time.perf_counter() - start:.0f} s on {a.workers} worker(s), load average {load:.2f} before.\n")
    print(f"Test accuracy (%) of the best-by-validation cell after {' / '.join(map(str, points))} queries "
          "(mean ± standard error) "
          "and the mean query at which the validation optimum was first evaluated (runs that did not find it "
          f"count as {a.queries + 1}).\n")
    header = " | ".join(f"{report.DATASET_NAMES[d]} {q}" for d in nb201.DATASETS for q in points)
    print(f"| variant | what it removes | {header} | " + " | ".join(f"{report.DATASET_NAMES[d]} found at"
                                                               for d in nb201.DATASETS) + " |")
    print("|---" * (2 + len(points) * len(nb201.DATASETS) + len(nb201.DATASETS)) + "|")
    for name, (config, about) in VARIANTS.items():
        cells, found = [], []
        for dataset in nb201.DATASETS:
            group = [r for j, r in zip(jobs, runs) if j.agent_config == config and j.dataset == dataset]
            for q in points:
                v = np.array([report.incumbent_test(r, q) for r in group])
                cells.append(f"{v.mean():.2f} ± {v.std(ddof=1) / np.sqrt(len(v)):.2f}")
            found.append(f"{np.mean([r.found_at or a.queries + 1 for r in group]):.0f}")
        print(f"| {name} | {about} | " + " | ".join(cells) + " | " + " | ".join(found) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
