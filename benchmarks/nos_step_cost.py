"""Cost of one optimizer step: compiled rules (RuleOptimizer) against torch.optim.Adam.

Claim checked: "the compiled optimizer's step costs no more than 2x torch.optim.Adam's step on
the same model". Gradients are set once (random, fixed) and only ``optimizer.step()`` is timed:
per repeat, ``--steps`` steps are timed with thread CPU time (robust to other processes on a
shared machine), the optimizers taking turns repeat by repeat, and the minimum and median over
``--repeats`` repeats are reported, per step; the ratio is taken to the faster of torch's two Adam
implementations, min to min and, paired repeat by repeat, as the median of each repeat's ratio to
the faster Adam of that repeat (a machine whose speed drifts moves both alike). One torch thread. Two
models: the NOS child ConvNet (6 small tensors: per-call overhead dominates) and an MLP
784-512-512-10 (0.67 M weights: memory traffic dominates). Rules with random operands (``drop``,
``eps``) draw one 16-bit word per weight and operand from an additive lagged-Fibonacci generator
(the fast draws of ``rlnas.optim.runtime.Draws``); the ``exact_random`` rows draw with torch's ``uniform_`` /
``normal_`` instead (the ablation); the last two rows time those draws alone, the floor of such a
rule in each mode. The ``fused`` rows run ``RuleOptimizer(..., fused=True)``: tensors of at least
``FUSED_MIN_ELEMENTS`` elements (the MLP's two large ones) take one ``torch.compile``-d loop each,
the others the multi-tensor code (all of the ConvNet's: there the rows equal the plain ones); the
seconds its first step takes (compiling, into an empty cache) are listed.

    python benchmarks/nos_step_cost.py --steps 200 --repeats 7
    python benchmarks/nos_step_cost.py --device cuda      # on a GPU: wall time, synchronized

With ``--device cuda`` the models and gradients live on the GPU, each repeat is timed in wall time
between two ``torch.cuda.synchronize()``, and torch's fused Adam (one kernel for all tensors) joins
the two Adam rows; the MLP's large tensors take Triton kernels with ``fused=True``.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable

import torch
from torch import nn

from rlnas.models.children import create_child
from rlnas.optim import RuleOptimizer, runtime
from rlnas.optim.runtime import Draws

FOUND_RULES = ("keep(rmsprop, log(sign(g)))", "drop(rmsprop, 0.1) - sqrt(g^3)", "adam + g")
"""The best rule of each PPO search of benchmarks/nos_search.py (seeds 0, 1, 2): what a user exports."""
RULES = ("adam", "sgd", "momentum", "rmsprop", "powersign", "addsign", "addsign-ld", *FOUND_RULES,
         "drop(adam, 0.1) * 1", "adam + eps", "drop(adam, 0.1) + eps")
RANDOM_RULES = ("drop(adam, 0.1) * 1", "adam + eps", "drop(adam, 0.1) + eps")
DRAWS = {False: "random draws only (drop + Gaussian per weight)",
         True: "random draws only, exact_random (uniform_ + normal_ per weight)"}


class RandomDrawsOnly(torch.optim.Optimizer):
    """Not an optimizer: a step draws what ``drop(adam, 0.1) + eps`` draws (a drop mask and
    Gaussian noise for every weight, with the rules' own ``Draws``) and nothing else: the floor of
    any rule with those operands in that mode."""

    def __init__(self, params: list[nn.Parameter], exact: bool):
        super().__init__(params, {})
        self.buffers = [torch.empty_like(p) for group in self.param_groups for p in group["params"]]
        self.draws = Draws(torch.Generator(self.buffers[0].device).manual_seed(0), exact, {})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        self.draws.drop_(self.buffers, 0.1)
        self.draws.gauss_(self.buffers, 0.1)


def models() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"child convnet (9 k weights, 6 tensors)": create_child("convnet", (1, 28, 28), 10),
            "mlp 784-512-512-10 (0.67 M weights)": create_child("mlp", (1, 28, 28), 10, hidden=(512, 512))}


def time_interleaved(optimizers: dict[str, torch.optim.Optimizer], steps: int,
                     repeats: int, device: str = "cpu") -> dict[str, list[float]]:
    """Microseconds per step of each repeat (thread CPU time; on a GPU, synchronized wall time); the
    repeats take turns between optimizers, so a change of the machine's load hits all of them alike."""
    gpu = device != "cpu"
    clock = time.perf_counter if gpu else time.thread_time
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    for optimizer in optimizers.values():
        for _ in range(10):
            optimizer.step()
    per_step: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(repeats):
        for name, optimizer in optimizers.items():
            sync()
            start = clock()
            for _ in range(steps):
                optimizer.step()
            sync()
            per_step[name].append((clock() - start) / steps * 1e6)
    return per_step


def paired_ratio(times: list[float], adams: dict[str, list[float]]) -> float:
    """The median over repeats of a repeat's time over the faster Adam's in the same repeat: robust to a
    machine whose speed drifts between repeats (the min/min ratio pairs two repeats that may be far apart)."""
    return statistics.median(t / min(a[k] for a in adams.values()) for k, t in enumerate(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--device", default="cpu", help="cpu, or a CUDA device (timed in synchronized wall time)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="nos_step_cost_")  # compile times: cold
    if args.device == "cpu":
        print(f"torch {torch.__version__}, {platform.machine()}, 1 thread, thread CPU time; "
              f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    else:
        print(f"torch {torch.__version__}, {torch.cuda.get_device_name(args.device)}, synchronized wall time")
    for label, model in models().items():
        params = [nn.Parameter(p.detach().to(args.device)) for p in model.parameters()]
        gen = torch.Generator().manual_seed(1)
        for p in params:
            p.grad = (torch.randn(p.shape, generator=gen) * 1e-3).to(args.device)
        candidates: list[tuple[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]]] = [
            ("torch.optim.Adam (default)", lambda ps: torch.optim.Adam(ps, lr=1e-9)),
            ("torch.optim.Adam (foreach=True)", lambda ps: torch.optim.Adam(ps, lr=1e-9, foreach=True))]
        if args.device != "cpu":
            candidates.append(("torch.optim.Adam (fused=True)", lambda ps: torch.optim.Adam(ps, lr=1e-9, fused=True)))
        candidates += [(f"RuleOptimizer {name}",
                        lambda ps, name=name: RuleOptimizer(ps, name, lr=1e-9, seed=0, total_steps=10**9))
                       for name in RULES]
        candidates += [(f"RuleOptimizer {name}, exact_random",
                        lambda ps, name=name: RuleOptimizer(ps, name, lr=1e-9, seed=0, total_steps=10**9,
                                                            exact_random=True))
                       for name in RANDOM_RULES]
        candidates += [(label, lambda ps, exact=exact: RandomDrawsOnly(ps, exact)) for exact, label in DRAWS.items()]
        candidates += [(f"RuleOptimizer {name}, fused",
                        lambda ps, name=name: RuleOptimizer(ps, name, lr=1e-9, seed=0, total_steps=10**9, fused=True))
                       for name in RULES]
        optimizers = {name: make(params) for name, make in candidates}
        first_step = {}
        for name, optimizer in optimizers.items():
            if name.endswith(", fused"):  # torch.compile compiles on the first step
                start = time.perf_counter()
                optimizer.step()
                first_step[name] = time.perf_counter() - start
        timed = time_interleaved(optimizers, args.steps, args.repeats, args.device)
        adams = {name: times for name, times in timed.items() if name.startswith("torch.optim.Adam")}
        adam = min(min(times) for times in adams.values())  # the fastest of torch's
        print(f"\n{label}\n")
        fastest = "faster" if args.device == "cpu" else "fastest"  # of torch's two (three on a GPU) Adams
        print(f"| optimizer | min µs/step | median µs/step | min / {fastest} Adam's min | median of paired ratios |")
        print("|---|---:|---:|---:|---:|")
        for name, times in timed.items():
            print(f"| {name} | {min(times):.1f} | {statistics.median(times):.1f} | {min(times) / adam:.2f} | "
                  f"{paired_ratio(times, adams):.2f} |")
        print()
        for exact, suffix in ((False, ""), (True, ", exact_random")):
            draws = min(timed[DRAWS[exact]])
            both = min(timed[f"RuleOptimizer drop(adam, 0.1) + eps{suffix}"])
            print(f"drop(adam, 0.1) + eps{suffix} less its random draws: {both - draws:.1f} µs = "
                  f"{(both - draws) / adam:.2f}x Adam; the draws alone: {draws / adam:.2f}x Adam")
        compile_times = ", ".join(f"{name.removeprefix('RuleOptimizer ').removesuffix(', fused')} {sec:.1f}"
                                  for name, sec in first_step.items())
        print(f"\nfused: wall seconds of the first step (torch.compile of the tensors of >= "
              f"{runtime.FUSED_MIN_ELEMENTS:,} elements, into an empty cache): {compile_times}")


if __name__ == "__main__":
    main()
