"""Optimizer-search throughput: rules evaluated per minute with 1 worker and with 2 worker processes.

Claim checked: "search throughput (rules evaluated per minute) with 1 and 2 workers is
reported". The same search (PPO, LSTM controller, batches of 10, seed 0, as in
``nos_search.py``; the optimizer evaluator's ConvNet on MNIST-5k at ``--steps`` steps and the
5-point learning-rate grid) runs
``--trials`` rules through ``Study.optimize`` once inline (1 worker) and once with
``RunOptions(executor="processes", workers=2)``, one torch thread per evaluation. A batch agent
proposes the same rules whatever the number of workers, so both runs evaluate the same rules.
Wall time includes starting the worker processes. The machine's load average is printed: on a
shared machine, other processes take cores away from the workers.

    python benchmarks/nos_throughput.py --trials 40 --steps 200
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from rlnas.evaluators.optimizer import OptimizerEvaluator
from rlnas.spaces.optimizer_rules import OptimizerRulesSpace
from rlnas.study import RunOptions, create_study

GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
CONTROLLER = {"controller": "lstm", "temperature": None, "tanh_constant": None, "entropy_weight": 0.0,
              "center_advantages": True}
"""The controller of benchmarks/nos_search.py."""


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def run(trials: int, steps: int, workers: int) -> dict:
    evaluator = OptimizerEvaluator(steps=steps, lr_grid=GRID)
    study = create_study(space=OptimizerRulesSpace(1), agent="ppo", evaluator=evaluator, seed=0,
                         agent_config={"batch_size": 10, "fail_reward": 0.0, **CONTROLLER})
    options = RunOptions(executor="inline" if workers == 1 else "processes", workers=workers, threads=1)
    before = load()
    start = time.perf_counter()
    study.optimize(trials, run=options)
    wall = time.perf_counter() - start
    return {"workers": workers, "wall": wall, "rules": len(study.trials), "load": before,
            "keys": [t.key for t in sorted(study.trials, key=lambda t: t.slot)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [run(args.trials, args.steps, workers) for workers in (1, 2)]
    same = rows[0]["keys"] == rows[1]["keys"]
    print(f"{args.trials} rules, child ConvNet on MNIST-5k, {args.steps} steps x {len(GRID)} learning rates per "
          f"rule; {os.cpu_count()} cores; same rules in both runs: {'yes' if same else 'no'}\n")
    print("| workers | executor | wall s | rules/min | speed-up | load average before |")
    print("|---:|---|---:|---:|---:|---|")
    for row in rows:
        rate = row["rules"] / (row["wall"] / 60)
        speedup = rows[0]["wall"] / row["wall"]
        executor = "inline" if row["workers"] == 1 else "processes"
        print(f"| {row['workers']} | {executor} | {row['wall']:.1f} | {rate:.2f} | {speedup:.2f} | {row['load']} |")


if __name__ == "__main__":
    main()
