"""Ablation of TuNAS's warm-up: how well a supernet trained on uniformly sampled paths scores its paths,
with and without op / filter warm-up.

The ``supernet`` evaluator trains ``--epochs`` epochs on MNIST-5k (``--input-size`` px,
``stem_stride=1``, width 0.35), every step on a path drawn uniformly from the space (as in the
first quarter of a search, before the controller learns), with op warm-up and filter warm-up
over the first ``--warmup`` of the steps or not at all. Reported: the mean and range of the
validation accuracy of ``--paths`` random paths through the trained supernet (the same paths
for every variant), and the mean training loss of the last epoch. One thread.

    python benchmarks/tunas_warmup.py --space proxyless --epochs 10
"""
from __future__ import annotations

import argparse
import os
import platform

import numpy as np
import torch

from rlnas.evaluators.supernet import SupernetEvaluator

VARIANTS = {"op + filter warm-up": (True, True), "filter warm-up only": (False, True),
            "op warm-up only": (True, False), "no warm-up": (False, False)}


def run(args: argparse.Namespace, op: bool, filters: bool) -> dict:
    """Train one supernet on uniform paths; scores of the fixed random paths."""
    ev = SupernetEvaluator(args.space, "mnist5k", epochs=args.epochs, lr=args.lr, seed=0,
                           model_kwargs={"width_mult": 0.35, "stem_stride": 1, "input_size": args.input_size},
                           op_warmup=args.warmup if op else 0.0, filter_warmup=args.warmup if filters else 0.0,
                           threads=1)
    rng = np.random.default_rng(1)
    losses = [ev.train_step(ev.space.sample(rng), step=t, total_steps=ev.total_steps)["loss"]
              for t in range(ev.total_steps)]
    paths = [ev.space.sample(np.random.default_rng(100 + i)) for i in range(args.paths)]
    accs = [ev.evaluate(p).metrics["supernet_acc"] for p in paths]
    return {"accs": accs, "loss": float(np.mean(losses[-ev.steps_per_epoch:]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="proxyless")
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--input-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--warmup", type=float, default=0.25)
    parser.add_argument("--paths", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# {args.space}, MNIST-5k at {args.input_size} px, {args.epochs:g} epochs on uniform paths, warm-up over "
          f"the first {args.warmup:g} of the steps, {args.paths} random paths scored on the validation split; "
          f"torch {torch.__version__}, one thread, {platform.machine()}\n")
    print("| variant | path accuracy mean (%) | min - max | last-epoch training loss |")
    print("|---|---|---|---|")
    for name, (op, filters) in VARIANTS.items():
        r = run(args, op, filters)
        print(f"| {name} | {np.mean(r['accs']):.1f} | {min(r['accs']):.1f} - {max(r['accs']):.1f} | "
              f"{r['loss']:.3f} |", flush=True)
    print(f"\n(load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())})")


if __name__ == "__main__":
    main()
