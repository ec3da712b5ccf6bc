"""CPU inference latency of a few networks: PyTorch eager vs ONNX Runtime (median ms, batch 1).

Each network is built with ``rlnas.models.create_model`` (full width), exported with
``rlnas.export.export_onnx`` and timed with the same warm-up / repeat counts and thread count in
both runtimes; the outputs are also compared (max abs difference).

    python benchmarks/onnx_latency.py --threads 1 --repeats 30
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rlnas.costs import count_flops, count_params, measure_latency
from rlnas.costs.measure import time_call
from rlnas.export import export_onnx
from rlnas.spaces import create_space, list_spaces

# (label, space, which candidate (None: random), input shape (None: the candidate's resolution), model kwargs)
NETWORKS = [
    ("nb201 best cell, C=16 N=5", "nb201", "best_cifar10", (3, 32, 32), {}),
    ("darts random cell, C=16 8 layers", "darts", None, (3, 32, 32), {"channels": 16, "layers": 8}),
    ("ofa_mbv3 random", "ofa_mbv3", None, None, {}),
    ("proxyless: ProxylessNAS-Mobile", "proxyless", "proxylessnas_mobile", None, {}),
    ("tunas_mbv3 random", "tunas_mbv3", None, None, {}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--statistic", default="median", choices=("median", "min"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import onnxruntime as ort

    from rlnas.models import create_model

    torch.set_num_threads(args.threads)
    print(f"# ONNX Runtime {ort.__version__} vs PyTorch {torch.__version__} eager, batch 1, "
          f"{args.threads} thread(s), {args.statistic} of {args.repeats} repeats, {platform.machine()}")
    print("| network | input | params (M) | MFLOPs | PyTorch ms | ONNX Runtime ms | speed-up | max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    tmp = Path(tempfile.mkdtemp())
    for label, space_name, which, shape, kwargs in NETWORKS:
        if space_name not in list_spaces():
            print(f"| {label} | skipped: space not registered |||||||")
            continue
        space = create_space(space_name)
        cand = space.known()[which] if which else space.sample(np.random.default_rng(args.seed))
        torch.manual_seed(args.seed)
        model = create_model(space, cand, **kwargs).eval()
        if shape is None:
            shape = (3, model.resolution, model.resolution)
        torch_ms = measure_latency(model, shape, warmup=args.warmup, repeats=args.repeats, threads=args.threads,
                                   statistic=args.statistic)
        path = export_onnx(model, tmp / f"{space_name}.onnx", shape)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        x = torch.randn((1,) + shape)
        feed = {"input": x.numpy()}
        ort_ms = time_call(lambda session=session, feed=feed: session.run(None, feed), warmup=args.warmup,
                           repeats=args.repeats, statistic=args.statistic)
        with torch.no_grad():
            diff = float(np.abs(session.run(None, feed)[0] - model(x).numpy()).max())
        print(f"| {label} | {'x'.join(map(str, shape))} | {count_params(model) / 1e6:.2f} | "
              f"{count_flops(model, shape) / 1e6:.1f} | {torch_ms:.2f} | {ort_ms:.2f} | {torch_ms / ort_ms:.2f}x | "
              f"{diff:.1e} |")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"\n(total {time.perf_counter() - start:.0f} s)")
