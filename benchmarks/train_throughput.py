"""Training throughput of the ``train`` evaluator per space on the 8x8 digits (images per second).

Each space is trained with its small default model kwargs (see ``DEFAULT_MODEL_KWARGS`` in
``rlnas/evaluators/train.py``) for ``--steps`` steps on ``--candidates`` random candidates; the
reported rate is ``steps * batch_size / train_time_s`` (median over candidates), measured on
``--threads`` CPU threads. Spaces whose model builder is not available are listed as skipped.

    python benchmarks/train_throughput.py --steps 30 --candidates 3
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

from rlnas.evaluators.train import DEFAULT_MODEL_KWARGS, TrainEvaluator
from rlnas.spaces import create_space, list_spaces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="*", default=list(DEFAULT_MODEL_KWARGS))
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# train throughput: {args.dataset}, {args.steps} steps x batch {args.batch_size}, "
          f"{args.threads} thread(s), torch {torch.__version__}, {platform.machine()}")
    print("| space | model kwargs | params (M) | images/s (median) | s per trial (median) |")
    print("|---|---|---|---|---|")
    for name in args.spaces:
        if name not in list_spaces():
            print(f"| {name} | - | - | skipped: space not registered | - |")
            continue
        space = create_space(name)
        ev = TrainEvaluator(space, args.dataset, steps=args.steps, batch_size=args.batch_size, seed=args.seed,
                            threads=args.threads)
        rng = np.random.default_rng(args.seed)
        rates, trial_times, params = [], [], []
        try:
            ev.evaluate(space.sample(rng), budget=2)  # warm-up (lazy kernels, allocator)
            for _ in range(args.candidates):
                start = time.perf_counter()
                m = ev.evaluate(space.sample(rng))
                trial_times.append(time.perf_counter() - start)
                rates.append(args.steps * ev.batch_size / m.metrics["train_time_s"])
                params.append(m.metrics["params_m"])
        except (ImportError, AttributeError, KeyError) as err:
            print(f"| {name} | - | - | skipped: {type(err).__name__}: {err} | - |")
            continue
        kwargs = {k: v for k, v in ev.resolved_model_kwargs().items() if k not in ("num_classes", "in_channels")}
        print(f"| {name} | {kwargs} | {statistics.median(params):.3f} | {statistics.median(rates):,.0f} | "
              f"{statistics.median(trial_times):.2f} |")


if __name__ == "__main__":
    main()
