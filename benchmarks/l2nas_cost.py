"""L²NAS cost per trial and checkpoint size as a search grows (claim: both stay flat).

One ``l2nas`` search on the NAS-Bench-201 table (CIFAR-10, 200-epoch reward) per seed, driven
through ``ask``/``tell`` directly so that only the agent's own work is timed (the table look-up
is not). Reported for windows of trials: mean milliseconds per trial (``ask`` + ``tell``,
``time.perf_counter``), and the size of the agent's state as the study checkpoints it after that many
trials. One thread; the machine's load average is printed with the numbers.

    python benchmarks/l2nas_cost.py                      # 2,000 trials, 3 seeds
    python benchmarks/l2nas_cost.py --trials 1000 --seeds 1 --set learn=false
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rlnas.agents import create_agent
from rlnas.evaluators.tabular import NB201Evaluator
from rlnas.study import checkpoint

WINDOW = 100
"""Trials per timing window."""


def checkpoint_kib(agent) -> float:
    """Size of the agent's state as a study checkpoint stores it, in KiB."""
    return len(checkpoint.encode(agent.state_dict())) / 1024


def one_search(seed: int, trials: int, config: dict, marks: list[int]) -> tuple[np.ndarray, dict[int, float]]:
    """Seconds of ask+tell per trial, and the checkpoint size after each trial count in ``marks``."""
    evaluator = NB201Evaluator("cifar10")
    agent = create_agent("l2nas", evaluator.space, config, seed=seed)
    seconds = np.zeros(trials)
    sizes = {}
    for t in range(trials):
        start = time.perf_counter()
        (proposal,) = agent.ask()
        middle = time.perf_counter()
        reward = evaluator.evaluate(proposal.candidate).metrics["valid_acc"]
        resumed = time.perf_counter()
        agent.tell([(proposal, reward)])
        seconds[t] = (middle - start) + (time.perf_counter() - resumed)
        if t + 1 in marks:
            sizes[t + 1] = checkpoint_kib(agent)
    return seconds, sizes


def main(argv: list[str] | None = None) -> int:
    """Run the measurement and print a markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=2000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="l2nas config override")
    a = p.parse_args(argv)
    if a.trials < WINDOW or a.seeds < 1:
        p.error(f"--trials must be at least one timing window ({WINDOW}) and --seeds positive")
    config = {}
    for item in a.set:
        key, _, value = item.partition("=")
        config[key] = json.loads(value)
    marks = sorted({m for m in (WINDOW, 300, 1000, 2000, a.trials) if m <= a.trials})
    load = os.getloadavg()[0]
    runs = [one_search(seed, a.trials, config, marks) for seed in range(a.seeds)]
    windows = sorted({0, *(m - WINDOW for m in marks if m >= 1000)} | {a.trials - WINDOW})
    print(f"l2nas config {config or 'defaults'}; {a.seeds} seed(s) x {a.trials} trials on NB201 CIFAR-10; "
          f"load average {load:.2f} before, {os.getloadavg()[0]:.2f} after.\n")
    print("| trials | ms per trial (ask + tell), mean over the window and seeds |")
    print("|---|---|")
    for w in windows:
        ms = 1000 * np.mean([s[w:w + WINDOW].mean() for s, _ in runs])
        print(f"| {w + 1}-{w + WINDOW} | {ms:.2f} |")
    print("\n| after trials | checkpoint (KiB, the encoded state_dict) |")
    print("|---|---|")
    for m in marks:
        print(f"| {m} | {np.mean([sizes[m] for _, sizes in runs]):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
