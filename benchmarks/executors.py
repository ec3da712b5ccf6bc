"""Executors side by side: the same search inline, on 2 local processes and on 2 Ray workers.

    python benchmarks/executors.py [--trials 20] [--epochs 8] [--repeats 3] [--tabular-trials 400]

Part 1 trains every candidate (the ``train`` evaluator: NB201 cells on the 8x8 digits, one torch
thread per evaluation, random agent, seed 0), so the 20 trials are the same 20 networks on every
executor, ``--repeats`` times in a rotating order; it reports the median wall time and the
speed-up of the medians over inline (goal: >= 1.7x with 2 workers on 2 cores), and checks that
each executor stored the same candidates with the same accuracies. Ray is started before the
clock starts (a user's cluster is already up); its start-up time is reported apart.
Part 2 runs the tabular NB201 evaluator, whose evaluation takes microseconds, so the difference in
time per trial is the executor's own overhead.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from rlnas import create_study
from rlnas.evaluators import create_evaluator
from rlnas.study import RunOptions


def timed_search(evaluator: object, trials: int, options: RunOptions, storage: str, name: str) -> tuple[float, list]:
    """Wall seconds of one search and its (slot, key, valid_acc) rows."""
    study = create_study(space="nb201", agent="random", evaluator=evaluator, seed=0, storage=storage, name=name)
    start = time.perf_counter()
    study.optimize(trials, run=options)
    elapsed = time.perf_counter() - start
    rows = [(t.slot, t.key, round(t.metrics["valid_acc"], 6)) for t in study.completed_trials]
    return elapsed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=float, default=8)
    parser.add_argument("--tabular-trials", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each executor (rotating order)")
    args = parser.parse_args()

    import ray

    started = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start = time.perf_counter() - started
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}, Ray {ray.__version__} (local, started in {ray_start:.1f} s)")
    runs = {"inline": RunOptions(threads=1),
            "processes": RunOptions(executor="processes", workers=args.workers, threads=1),
            "ray": RunOptions(executor="ray", workers=args.workers, threads=1)}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        train = create_evaluator("train", space="nb201", dataset="digits", epochs=args.epochs)
        print(f"\n### Train evaluator: {args.trials} trials, {args.epochs:g} epochs each on digits, "
              f"{args.workers} workers\n")
        print("| executor | wall s (median) | each run, s | speed-up over inline | same trials as inline |")
        print("|---|---|---|---|---|")
        labels = list(runs)
        seconds: dict[str, list[float]] = {label: [] for label in labels}
        same: dict[str, bool] = dict.fromkeys(labels, True)
        reference_rows = None
        for repeat in range(args.repeats):
            for label in labels[repeat % len(labels):] + labels[:repeat % len(labels)]:
                elapsed, rows = timed_search(train, args.trials, runs[label], url, f"train-{label}-{repeat}")
                reference_rows = rows if reference_rows is None else reference_rows
                seconds[label].append(elapsed)
                same[label] = same[label] and rows == reference_rows
        inline = statistics.median(seconds["inline"])
        for label in labels:
            median = statistics.median(seconds[label])
            each = ", ".join(f"{x:.1f}" for x in seconds[label])
            print(f"| {label} | {median:.1f} | {each} | {inline / median:.2f}x | {same[label]} |")

        tabular = create_evaluator("nb201", dataset="cifar10")
        print(f"\n### Tabular evaluator: {args.tabular_trials} trials (the executor's own cost)\n")
        print("| executor | wall s | ms per trial | overhead per trial over inline, ms |")
        print("|---|---|---|---|")
        inline_ms = None
        for label, options in runs.items():
            seconds, _ = timed_search(tabular, args.tabular_trials, options, url, f"tabular-{label}")
            ms = 1000 * seconds / args.tabular_trials
            inline_ms = ms if inline_ms is None else inline_ms
            print(f"| {label} | {seconds:.2f} | {ms:.2f} | {ms - inline_ms:.2f} |")
    ray.shutdown()


if __name__ == "__main__":
    main()
