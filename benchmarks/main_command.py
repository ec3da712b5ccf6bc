"""CPU time of the README's main command, today's code against an earlier commit, side by side.

    python benchmarks/main_command.py [--baseline 9f0fb67] [--repeats 3]

Both versions run ``rlnas search --space nb201 --dataset cifar10 --agent l2nas --trials 300
--seed 0`` in a fresh folder (a new SQLite file each time), alternating, as child processes whose
user + system CPU time is read from ``getrusage``. The baseline's package is extracted from git
(``git archive``) and put first on ``PYTHONPATH``; the dependencies are the same environment's.
Each version runs twice per round: from a tree byte-compiled beforehand (``compileall``: what every
run after a user's first one costs, as Python caches bytecode on the first import) and from a tree
with no bytecode, which compiles every module of the package on each run (the first run; or every
run where ``PYTHONDONTWRITEBYTECODE`` is set, as on the machine these numbers come from).
"""
from __future__ import annotations

import argparse
import compileall
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMAND = ["search", "--space", "nb201", "--dataset", "cifar10", "--agent", "l2nas", "--trials", "300", "--seed", "0",
           "--no-progress"]


def run_once(source: Path, folder: Path) -> tuple[float, float]:
    """CPU seconds and wall seconds of one run of the main command with the package at ``source``."""
    env = dict(os.environ, PYTHONPATH=str(source))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from rlnas.cli import main; raise SystemExit(main())", *COMMAND],
                   cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def prepare_trees(tmp: Path, baseline: str) -> dict[str, Path]:
    """Package trees to put on ``PYTHONPATH``: baseline and current code, each with and without bytecode."""
    trees = {}
    for label in ("baseline", "current"):
        for cached in (True, False):
            tree = tmp / f"{label}-{'pyc' if cached else 'source'}"
            tree.mkdir()
            if label == "baseline":
                archive = subprocess.run(["git", "archive", baseline, "rlnas"], cwd=ROOT, check=True,
                                         capture_output=True)
                subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
            else:
                shutil.copytree(ROOT / "rlnas", tree / "rlnas", ignore=shutil.ignore_patterns("__pycache__"))
            if cached:
                compileall.compile_dir(tree / "rlnas", quiet=1)
            trees[f"{label}, {'bytecode cached' if cached else 'no bytecode cache'}"] = tree
    return trees


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="9f0fb67", help="commit to compare with (default: before issue 8)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = prepare_trees(Path(tmp), args.baseline)
        results: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
        for repeat in range(args.repeats):
            for number, (label, source) in enumerate(trees.items()):
                folder = Path(tmp) / f"run-{repeat}-{number}"
                folder.mkdir()
                results[label].append(run_once(source, folder))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}; command: rlnas {' '.join(COMMAND)}")
    print(f"repeats: {args.repeats} rounds, each running the four trees in turn; baseline = {args.baseline}, "
          f"current = {commit.strip()}\n")
    print("| code | CPU s, median | CPU s, min | wall s, median |")
    print("|---|---|---|---|")
    medians, minima = {}, {}
    for label, rows in results.items():
        medians[label], minima[label] = statistics.median(r[0] for r in rows), min(r[0] for r in rows)
        print(f"| {label} | {medians[label]:.2f} | {minima[label]:.2f} | {statistics.median(r[1] for r in rows):.2f} |")
    print()
    print("CPU time, current / baseline (goal <= 0.5): the ratio of the medians; of the minima (the runs least "
          "disturbed by the rest of the machine, timeit's measure); the median and the range of the ratios of the "
          "runs made next to each other\n")
    print("| condition | ratio of medians | ratio of minima | median paired ratio | paired ratios, min - max |")
    print("|---|---|---|---|---|")
    for condition in ("bytecode cached", "no bytecode cache"):
        current, baseline = results[f"current, {condition}"], results[f"baseline, {condition}"]
        paired = [c[0] / b[0] for c, b in zip(current, baseline)]
        print(f"| {condition} | {medians['current, ' + condition] / medians['baseline, ' + condition]:.2f} | "
              f"{minima['current, ' + condition] / minima['baseline, ' + condition]:.2f} | "
              f"{statistics.median(paired):.2f} | {min(paired):.2f} - {max(paired):.2f} |")


if __name__ == "__main__":
    main()
