"""Do the policy-gradient controllers collapse? Distinct architectures per 300 queries on NAS-Bench-201.

For REINFORCE and PPO with each controller, ``--seeds`` searches of ``--queries`` queries on
the CIFAR-10 table (200-epoch reward): the number of distinct architectures among the
queries, and the test accuracy of the best-by-validation cell at the end. The LSTM rows are
run with the defaults (ENAS's temperature 5 and tanh constant 2.5; PPO with its entropy
bonus) and, for comparison, with that shaping and bonus switched off.

    python benchmarks/controllers_distinct.py                  # 10 seeds, 300 queries
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nb201 import _init_worker, _single_thread_torch, evaluator_for

OFF = {"temperature": None, "tanh_constant": None, "entropy_weight": 0.0}
ROWS: tuple[tuple[str, str, dict], ...] = (
    ("reinforce", "factorized (default)", {}),
    ("reinforce", "lstm (default: ENAS shaping)", {"controller": "lstm"}),
    ("reinforce", "lstm, shaping off", {"controller": "lstm", **OFF}),
    ("ppo", "factorized (default: entropy 0.01)", {}),
    ("ppo", "lstm (default: ENAS shaping, entropy 0.01)", {"controller": "lstm"}),
    ("ppo", "lstm, shaping and entropy off", {"controller": "lstm", **OFF}),
)


def one_run(agent: str, config: dict, seed: int, queries: int) -> tuple[int, float]:
    """Distinct architectures among the queries, and the final incumbent's test accuracy."""
    from rlnas.study import create_study

    evaluator = evaluator_for("cifar10", 200)
    study = create_study(space="nb201", agent=agent, agent_config=config, evaluator=evaluator, seed=seed,
                         checkpoint_every=0)
    _single_thread_torch()
    study.optimize(queries)
    trials = study.completed_trials
    best = max(trials, key=lambda t: (t.reward, -t.slot))
    return len({t.key for t in trials}), float(best.metrics["test_acc"])


def main(argv: list[str] | None = None) -> int:
    """Run every row and print a markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="runs per controller setting")
    p.add_argument("--queries", type=int, default=300, help="queries per run")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    a = p.parse_args(argv)
    jobs = [(agent, config, seed, a.queries) for agent, _, config in ROWS for seed in range(a.seeds)]
    load, start = os.getloadavg()[0], time.perf_counter()
    with ProcessPoolExecutor(a.workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        results = list(pool.map(one_run, *zip(*jobs)))
    print(f"{a.seeds} seeds x {a.queries} queries per row, NB201 CIFAR-10; {time.perf_counter() - start:.0f} s on "
          f"{a.workers} worker(s), load average {load:.2f} before.\n")
    print(f"| agent | controller | distinct architectures in {a.queries} queries (mean, min) | "
          "final test accuracy (mean ± std) |")
    print("|---|---|---|---|")
    for i, (agent, label, _) in enumerate(ROWS):
        rows = results[i * a.seeds:(i + 1) * a.seeds]
        distinct = np.array([d for d, _ in rows])
        test = np.array([t for _, t in rows])
        print(f"| {agent} | {label} | {distinct.mean():.0f}, {distinct.min()} | "
              f"{test.mean():.2f} ± {test.std(ddof=1):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
