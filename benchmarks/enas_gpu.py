"""ENAS on a GPU: the shared-weight checks on CUDA, and ENAS-sized searches on MNIST-5k with both algorithms.

1. For ``enas_macro`` and ``enas_micro`` supernets on ``--device``: a child computes what its
   stand-alone network (with the inherited weights) computes, and one SGD step on a child
   reaches exactly the weights on its path (gradients) and moves nothing else.
2. For ``ppo`` and ``reinforce``: an ENAS search of ``enas_micro`` on MNIST-5k at ENAS's search
   size (20 channels, 6 normal cells, stem stride 1) and controller schedule (``--controller-steps``
   updates of 10 children per epoch, Adam 0.0035 as ENAS's micro-search script) for ``--epochs``
   epochs, then its most likely child retrained from scratch for ``--retrain-epochs`` epochs.

In-memory studies only (no database package needed). Prints a markdown report.

    python benchmarks/enas_gpu.py --device cuda
    python benchmarks/enas_gpu.py --device cpu --epochs 0.2 --controller-steps 1 --retrain-epochs 0.1 \
        --channels 4 --layers 1                                     # smoke run
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def check_supernets(device: str) -> list[str]:
    """Equality with the stand-alone child and exact sharing, on ``device``."""
    from rlnas.models import create_model
    from rlnas.models.enas import enas_supernet
    from rlnas.spaces import create_space

    lines = []
    for name, kwargs in (("enas_macro", {"channels": 16}), ("enas_micro", {"channels": 8, "layers": 2})):
        space = create_space(name)
        torch.manual_seed(0)
        supernet = enas_supernet(space, in_channels=1, **kwargs).to(device).train()
        rng = np.random.default_rng(0)
        x = torch.randn(16, 1, 28, 28, device=device)
        y = torch.arange(16, device=device) % 10
        worst = 0.0
        for _ in range(5):
            cand = space.sample(rng)
            alone = create_model(space, cand, in_channels=1, running_stats=False, **kwargs).to(device).train()
            alone.load_state_dict(supernet.child_state_dict(cand))
            with torch.no_grad():
                worst = max(worst, float((alone(x) - supernet(x, cand)).abs().max()))
        cand = space.sample(rng)
        before = {k: v.clone() for k, v in supernet.state_dict().items()}
        optimizer = torch.optim.SGD(supernet.parameters(), lr=0.1)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(supernet(x, cand), y).backward()
        optimizer.step()
        changed = {k for k, v in supernet.state_dict().items() if not torch.equal(v, before[k])}
        path = set(supernet.child_state_dict(cand))
        exact = {n for n, p in supernet.named_parameters() if p.grad is not None} == path and changed <= path
        lines.append(f"| {name} | {worst:.2e} | {'yes' if exact else 'NO'} ({len(changed)} of the path's "
                     f"{len(path)} tensors moved) |")
    return lines


def search(algo: str, args: argparse.Namespace) -> dict:
    """One ENAS-sized search and the retraining of its most likely child."""
    from rlnas.evaluators.shared import SharedEvaluator
    from rlnas.retrain import retrain, retrain_options, search_answers
    from rlnas.study import create_study

    net = {"channels": args.channels, "layers": args.layers, "stem_stride": 1}
    evaluator = SharedEvaluator("enas_micro", dataset="mnist5k", epochs=args.epochs, model_kwargs=net,
                                device=args.device)
    study = create_study(space="enas_micro", agent="enas", evaluator=evaluator, seed=0, name=algo,
                         agent_config={"algo": algo, "lr": 0.0035, "controller_steps": args.controller_steps})
    start = time.perf_counter()
    study.optimize(10_000)
    wall = time.perf_counter() - start
    mode = search_answers(study)[0]
    start = time.perf_counter()
    measured = retrain(study.space, mode.candidate, retrain_options(study, args.retrain_epochs), seed=0,
                       device=args.device).metrics
    entropy = [values["entropy"] for _, values in study.diagnostics()]
    return {"algo": algo, "wall": wall, "retrain_wall": time.perf_counter() - start, "shared": mode.metrics,
            "retrained": measured, "entropy": (entropy[0], entropy[-1]), "trials": len(study.completed_trials)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--controller-steps", type=int, default=30)
    parser.add_argument("--retrain-epochs", type=float, default=10)
    parser.add_argument("--channels", type=int, default=20, help="search network width (ENAS: 20)")
    parser.add_argument("--layers", type=int, default=6, help="normal cells of the search network (ENAS: 6)")
    args = parser.parse_args()
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"### ENAS on {name} (torch {torch.__version__})\n")
    print("| supernet | max abs difference child vs stand-alone | gradient exactly on the path, nothing else moves |")
    print("|---|---|---|")
    for line in check_supernets(args.device):
        print(line, flush=True)
    print(f"\nSearches: enas_micro, MNIST-5k, network of {args.channels} channels and {args.layers} normal cells, "
          f"{args.epochs:g} epochs, "
          f"{args.controller_steps} controller updates of 10 children per epoch, Adam 0.0035; the mode "
          f"retrained for {args.retrain_epochs:g} epochs.\n")
    print("| algo | search wall time | trials | mode shared_acc (valid) | entropy first → last update | "
          "retrained valid / test acc | retrain wall time |")
    print("|---|---|---|---|---|---|---|")
    for algo in ("ppo", "reinforce"):
        r = search(algo, args)
        print(f"| {algo} | {r['wall']:.0f} s | {r['trials']} | {r['shared']['shared_acc']:.2f} | "
              f"{r['entropy'][0]:.2f} → {r['entropy'][1]:.2f} | {r['retrained']['valid_acc']:.2f} / "
              f"{r['retrained']['test_acc']:.2f} | {r['retrain_wall']:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
