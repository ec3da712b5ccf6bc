"""Trials per second of search agents on the NB201 tabular evaluator, with and without a store.

    python benchmarks/overhead.py [--agents random,evolution,l2nas:2000] [--trials 5000] [--repeats 3]

Runs the same seeded search through ``Study.optimize`` twice per agent: with the in-memory
store (no persistence: the bare loop of agent, evaluator and study bookkeeping) and with the
SQLite store on a temporary file (a trial's two transactions, the agent's per-tell diagnostics
and the default checkpoints). Reports the median of ``--repeats`` runs and the ratio of the
two times per trial.
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
from rlnas.evaluators.tabular import NB201Evaluator
from rlnas.study import DEFAULT_CHECKPOINT_EVERY


def trials_per_second(agent: str, storage: str | None, trials: int, seed: int) -> tuple[float, float]:
    """Run one search of ``trials`` trials; return trials per wall-clock and per CPU second."""
    study = create_study(space="nb201", agent=agent, evaluator=NB201Evaluator("cifar10"), seed=seed,
                         storage=storage, name=f"overhead-{agent}-{seed}")
    warm_up = DEFAULT_CHECKPOINT_EVERY  # imports, first checkpoint, statement compilation
    study.optimize(warm_up)
    start, start_cpu = time.perf_counter(), time.process_time()
    study.optimize(trials + warm_up)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    assert study.n_finished == trials + warm_up
    return trials / elapsed, trials / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="random,evolution,l2nas",
                        help="comma-separated; AGENT:N runs N trials for that agent instead of --trials")
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}")
    print(f"repeats: {args.repeats}, bare and stored in turn (medians)")
    print("| agent | trials per run | in memory, trials/s | SQLite, trials/s | ratio, wall clock (stored / bare) "
          "| ratio, CPU time |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for entry in args.agents.split(","):
            agent, _, count = entry.partition(":")
            trials = int(count) if count else args.trials
            bare, stored = [], []
            for repeat in range(args.repeats):
                bare.append(trials_per_second(agent, None, trials, repeat))
                url = f"sqlite:///{Path(folder) / f'{agent}-{repeat}.db'}"
                stored.append(trials_per_second(agent, url, trials, repeat))
            bare_wall, bare_cpu = (statistics.median(r[i] for r in bare) for i in (0, 1))
            stored_wall, stored_cpu = (statistics.median(r[i] for r in stored) for i in (0, 1))
            print(f"| {agent} | {trials:,} | {bare_wall:,.0f} | {stored_wall:,.0f} | {bare_wall / stored_wall:.2f}x | "
                  f"{bare_cpu / stored_cpu:.2f}x |")

if __name__ == "__main__":
    main()
