"""CPU time of the README's main command, today's code against an earlier commit, side by side.

    python benchmarks/main_command.py [--baseline 9f0fb67] [--repeats 3]

Both versions run ``rlnas search --space nb201 --dataset cifar10 --agent l2nas --trials 300
--seed 0`` in a fresh folder (a new SQLite file each time), alternating, as child processes whose
user + system CPU time is read from ``getrusage``. The baseline's package is extracted from git
(``git archive``) and put first on ``PYTHONPATH``; the dependencies are the same environment's.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="9f0fb67", help="commit to compare with (default: before issue 8)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline, "rlnas"], cwd=ROOT, check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
        results: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
        for repeat in range(args.repeats):
            for label, source in (("baseline", base), ("current", ROOT)):
                folder = Path(tmp) / f"{label}-{repeat}"
                folder.mkdir()
                results[label].append(run_once(source, folder))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, "
          f"Python {platform.python_version()}; command: rlnas {' '.join(COMMAND)}")
    print(f"repeats: {args.repeats} each, alternating (medians)\n")
    print("| code | CPU s (user + system) | wall s |")
    print("|---|---|---|")
    medians = {}
    for label, rows in results.items():
        cpu, wall = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        medians[label] = cpu
        name = f"baseline {args.baseline}" if label == "baseline" else f"current {commit.strip()}"
        print(f"| {name} | {cpu:.2f} | {wall:.2f} |")
    print(f"\nCPU time, current / baseline: {medians['current'] / medians['baseline']:.2f} (goal <= 0.5)")


if __name__ == "__main__":
    main()
