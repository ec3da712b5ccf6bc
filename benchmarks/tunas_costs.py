"""What a TuNAS supernet step costs on the CPU: memory with and without rematerialization, and time
relative to one training step of the space's largest candidate.

Memory: each configuration runs in a fresh process (glibc told to return every large block to
the system, so the resident size follows the tensors alive); after one warm-up step (gradients,
momenta and oneDNN caches allocated) the peak-RSS mark is reset (``/proc/self/clear_refs``) and
``--steps`` more steps run; reported is the peak resident memory above the resident memory
before those steps: what one training step needs on top of the weights. Two paths: one sampled
path (the search after warm-up) and full op warm-up (every op decision runs all its choices,
averaged, and every filter decision its largest count: the first step of a search).

Time: thread CPU time of one shared-weight step (forward, backward, SGD) on a random path, the
same with op warm-up, one controller reward (a forward pass on the validation batch), against
one training step of the largest candidate as a stand-alone network, all channels_last, best of
``--repeats``. One thread.

    python benchmarks/tunas_costs.py --spaces proxyless tunas_mbv3
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from rlnas.models import create_model, create_supernet
from rlnas.models.supernet import WarmupPath, decision_role
from rlnas.spaces import create_space

SIZE = {"width_mult": 0.35, "stem_stride": 1, "num_classes": 10, "in_channels": 1}


def status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in kB (``VmRSS``, ``VmHWM``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def paths(space, warmup: bool, n: int, seed: int = 0) -> list:
    """``n`` training paths: sampled candidates, or full op and filter warm-up of them."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        cand = space.sample(rng)
        if warmup:
            choices = {d.name: (max(d.choices) if decision_role(d.name) == "filters" else cand[d.name])
                       for d in space.decisions}
            ops = frozenset(d.name for d in space.decisions if decision_role(d.name) == "op")
            out.append(WarmupPath(space.candidate(choices), ops))
        else:
            out.append(WarmupPath(cand))
    return out


def memory_child(space_name: str, warmup: bool, remat: bool, batch: int, size: int, steps: int) -> dict:
    """Run in a fresh process: peak resident memory of training steps above the resident memory before."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    space = create_space(space_name)
    net = create_supernet(space, **SIZE, input_size=size, remat=remat).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    todo = paths(space, warmup, steps + 1)

    def step(path) -> None:
        loss = F.cross_entropy(net(x, path), y)
        optimizer.zero_grad(set_to_none=False)
        loss.backward()
        optimizer.step()

    step(todo[0])
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS mark
    before = status_kb("VmRSS")
    for path in todo[1:]:
        step(path)
    return {"before_mb": before / 1024, "peak_mb": status_kb("VmHWM") / 1024,
            "step_mb": (status_kb("VmHWM") - before) / 1024}


def memory(space: str, warmup: bool, remat: bool, args: argparse.Namespace) -> dict:
    """:func:`memory_child` in a fresh process."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    code = (f"import json, sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); import tunas_costs as t; "
            f"print(json.dumps(t.memory_child({space!r}, {warmup}, {remat}, {args.batch}, {args.size}, {args.steps})))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def best_time(fn, repeats: int) -> float:
    """Fewest thread CPU seconds of ``fn()`` over ``repeats`` calls (after one untimed call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return min(times)


def timings(space_name: str, args: argparse.Namespace) -> dict:
    """Seconds of a supernet step (random path, op warm-up), a controller reward, a largest-candidate step."""
    torch.manual_seed(0)
    space = create_space(space_name)
    net = create_supernet(space, **SIZE, input_size=args.size).to(memory_format=torch.channels_last)
    largest = create_model(space, space.extreme(True), **SIZE, input_size=args.size).to(
        memory_format=torch.channels_last)
    x = torch.randn(args.batch, 1, args.size, args.size).contiguous(memory_format=torch.channels_last)
    xv = torch.randn(args.valid_batch, 1, args.size, args.size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (args.batch,))
    opt_net = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    opt_largest = torch.optim.SGD(largest.parameters(), lr=0.01, momentum=0.9)
    random_paths, warm_paths = iter(paths(space, False, 10 ** 4)), iter(paths(space, True, 10 ** 4))

    def supernet_step(todo) -> None:
        loss = F.cross_entropy(net(x, next(todo)), y)
        opt_net.zero_grad()
        loss.backward()
        opt_net.step()

    def largest_step() -> None:
        loss = F.cross_entropy(largest(x), y)
        opt_largest.zero_grad()
        loss.backward()
        opt_largest.step()

    def reward() -> None:
        with torch.no_grad():
            net(xv, next(random_paths))

    return {"supernet": best_time(lambda: supernet_step(random_paths), args.repeats),
            "warmup": best_time(lambda: supernet_step(warm_paths), args.repeats),
            "reward": best_time(reward, args.repeats), "largest": best_time(largest_step, args.repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", nargs="*", default=["proxyless", "tunas_mbv3"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--valid-batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=28, help="input pixels (MNIST's own 28)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"# batch {args.batch} images of {args.size} px, width 0.35, stem_stride 1, channels_last, one thread; "
          f"torch {torch.__version__}, {platform.machine()}, load {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("\nPeak memory of a training step above the resident memory before it (MB; resident before in brackets)\n")
    print("| space | path | without remat | with remat | saved |")
    print("|---|---|---|---|---|")
    for space in args.spaces:
        for warmup in (False, True):
            plain, remat = memory(space, warmup, False, args), memory(space, warmup, True, args)
            print(f"| {space} | {'op + filter warm-up (all ops)' if warmup else 'one sampled path'} | "
                  f"{plain['step_mb']:.0f} ({plain['before_mb']:.0f}) | {remat['step_mb']:.0f} "
                  f"({remat['before_mb']:.0f}) | {100 * (1 - remat['step_mb'] / plain['step_mb']):.0f} % |", flush=True)
    print("\nCPU time of one step (ms, best of repeats) and ratios to one training step of the largest candidate\n")
    print("| space | largest candidate step | supernet step (random path) | ratio | supernet step (all ops) | "
          "ratio | controller reward (forward on the valid batch) |")
    print("|---|---|---|---|---|---|---|")
    for space in args.spaces:
        t = timings(space, args)
        print(f"| {space} | {1000 * t['largest']:.0f} | {1000 * t['supernet']:.0f} | "
              f"{t['supernet'] / t['largest']:.2f} | {1000 * t['warmup']:.0f} | {t['warmup'] / t['largest']:.2f} | "
              f"{1000 * t['reward']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
