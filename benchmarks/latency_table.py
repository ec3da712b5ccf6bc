"""How well the per-layer latency lookup table ranks networks: Spearman correlation of predicted vs
measured CPU latency over random candidates of each mobile space (goal >= 0.9).

For each space: ``LatencyTable.build`` measures every unit configuration once (at most
``--max-combos`` per block position), then for ``--candidates`` random candidates the full
network (width ``--width-mult``, the candidate's own resolution unless ``--resolution``) is timed
with ``measure_latency`` and compared with ``table.predict`` (``scipy.stats.spearmanr``). Also
reported: build time, table size, units ``predict`` had to measure later (misses), the mean
ratio predicted / measured, and the *retest* rho (the same networks timed twice): on a busy
machine timing noise, not the table, caps the achievable rho. ``--clock cpu --statistic min``
(thread CPU time, minimum over repeats) is the steadiest choice on a shared machine.

    python benchmarks/latency_table.py --candidates 50 --clock cpu --statistic min
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from scipy.stats import spearmanr

from rlnas.costs import LatencyTable, measure_latency
from rlnas.spaces import create_space, list_spaces

MOBILE_SPACES = ("ofa_mbv3", "proxyless", "proxyless_enlarged", "tunas_mbv3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="*", default=list(MOBILE_SPACES))
    parser.add_argument("--resolution", type=int, default=None, help="default: each candidate's own")
    parser.add_argument("--width-mult", type=float, default=1.0)
    parser.add_argument("--candidates", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--clock", default="wall", choices=("wall", "cpu"))
    parser.add_argument("--statistic", default="median", choices=("median", "min"))
    parser.add_argument("--max-combos", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="folder to write <space>.json tables into")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = (3, args.resolution, args.resolution) if args.resolution else None
    timing = {"threads": args.threads, "warmup": args.warmup, "repeats": args.repeats, "clock": args.clock,
              "statistic": args.statistic}
    print(f"# latency table vs measured: resolution {args.resolution or 'of each candidate'}, width "
          f"{args.width_mult:g}, batch 1, {timing}, {args.candidates} random candidates, "
          f"torch {torch.__version__}, {platform.machine()}")
    print("| space | table entries | build s | measured ms (min-max) | Spearman rho | retest rho | "
          "predicted/measured | misses |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.spaces:
        if name not in list_spaces():
            print(f"| {name} | skipped: space not registered ||||||")
            continue
        space = create_space(name)
        torch.manual_seed(args.seed)
        start = time.perf_counter()
        table = LatencyTable.build(space, input_shape=shape, model_kwargs={"width_mult": args.width_mult},
                                   max_combos=args.max_combos, seed=args.seed, **timing)
        build_s = time.perf_counter() - start
        entries = len(table.entries)
        rng = np.random.default_rng(args.seed + 1)
        predicted, measured, again = [], [], []
        candidates = [space.sample(rng) for _ in range(args.candidates)]
        for cand in candidates:
            model = table.model(cand)
            measured.append(measure_latency(model, table.model_input_shape(model), **timing))
            predicted.append(table.predict(cand))
        for cand in candidates:
            model = table.model(cand)
            again.append(measure_latency(model, table.model_input_shape(model), **timing))
        rho = spearmanr(predicted, measured).statistic
        retest = spearmanr(measured, again).statistic
        ratio = float(np.mean(np.array(predicted) / np.array(measured)))
        print(f"| {name} | {entries} | {build_s:.0f} | {min(measured):.1f}-{max(measured):.1f} | {rho:.3f} | "
              f"{retest:.3f} | "
              f"{ratio:.2f} | {table.misses} |")
        if args.save:
            table.save(f"{args.save}/{name}.json")


if __name__ == "__main__":
    main()
