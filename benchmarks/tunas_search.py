"""TuNAS searches with latency targets spread over a mobile space's range, on MNIST-5k on the CPU.

Claim checked (issue 9): "a tunas search with a latency target ends with an architecture whose
cost-model latency is within +-5 % of the target, for three targets spread over the space's
range, each in one search (the absolute reward's promise)". Also recorded: the controller's
entropy and the latency of its argmax over the search (a plot), and each search's wall time.

For every target (a fraction of the way from the space's lowest to its highest cost, see
``CostModel.range``) and seed, one study runs ``Study.optimize`` with the ``tunas`` agent and
the ``supernet`` evaluator (``--epochs`` epochs of supernet training on MNIST-5k resized to
``--input-size`` px, ``stem_stride=1``, width 0.35), rewarded by TuNAS's absolute reward
``supernet_acc + beta * |latency / target - 1|`` with the latency from the shipped lookup table
(ms of the deployable network at 224 px). The answer is the argmax of every decision at the end
(the last recorded trial). One torch thread.

    python benchmarks/tunas_search.py                            # proxyless, 3 targets, seed 0
    python benchmarks/tunas_search.py --seeds 1 2 --name untuned # the same on seeds not tuned on

Writes ``benchmarks/results/tunas_search/<name>.md`` (printed too), ``<name>.json`` (per-step
entropy, argmax latency, diagnostics) and the plot ``docs/images/tunas_<name>.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from rlnas.evaluators.supernet import SupernetEvaluator
from rlnas.study import create_study
from rlnas.study._weight_sharing import planned_trials
from rlnas.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "tunas_search"
IMAGES = ROOT / "docs" / "images"


def evaluator_for(args: argparse.Namespace, seed: int) -> SupernetEvaluator:
    """The supernet evaluator of one search (seeded like the search)."""
    return SupernetEvaluator(args.space, "mnist5k", epochs=args.epochs, batch_size=args.batch_size,
                             valid_batch_size=args.valid_batch_size, lr=args.lr, seed=seed,
                             model_kwargs={"width_mult": 0.35, "stem_stride": 1, "input_size": args.input_size},
                             threads=1)


def search(args: argparse.Namespace, fraction: float, seed: int) -> dict:
    """One search towards the target at ``fraction`` of the cost range; its trajectory and answer."""
    evaluator = evaluator_for(args, seed)
    low, high = evaluator.cost_model.range()
    target = round(low + fraction * (high - low), 2)
    reward = {"name": "abs", "metric": "supernet_acc", "cost": "latency_ms", "target": target, "beta": args.beta}
    evaluator.check_reward("abs", beta=args.beta, target=target)
    config = {"lr": args.rl_lr, "batch_size": args.rl_batch}
    study = create_study(space=args.space, agent="tunas", agent_config=config, evaluator=evaluator, reward=reward,
                         seed=seed, name=f"tunas-{args.space}-{fraction}-{seed}")
    start = time.perf_counter()
    study.optimize(planned_trials(study))
    wall = time.perf_counter() - start
    trials = sorted((t for t in study.trials if t.state is TrialState.COMPLETE), key=lambda t: t.slot)
    final = trials[-1]
    diagnostics = study.store.diagnostics(study.record.id)
    return {
        "fraction": fraction, "seed": seed, "target": target, "range": [low, high], "wall_s": wall,
        "final_key": final.key, "final_latency": final.metrics["latency_ms"],
        "final_acc": final.metrics["supernet_acc"], "error": final.metrics["latency_ms"] / target - 1,
        "records": [{"step": t.eval_info["step"], "latency": t.metrics["latency_ms"],
                     "acc": t.metrics["supernet_acc"]} for t in trials],
        "diagnostics": [{"step": step, **values} for step, values in diagnostics],
    }


def plot(runs: list[dict], path: Path) -> None:
    """Entropy of the controller and latency of its argmax over the search, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        label = f"target {run['target']:g} ms (seed {run['seed']})"
        steps = [d["step"] for d in run["diagnostics"]]
        line = left.plot(steps, [d["entropy"] for d in run["diagnostics"]], label=label)[0]
        right.plot([r["step"] for r in run["records"]], [r["latency"] for r in run["records"]], marker="o",
                   markersize=3, color=line.get_color(), label=label)
        right.axhline(run["target"], color=line.get_color(), linestyle=":", linewidth=1)
        for bound in (0.95, 1.05):
            right.axhline(run["target"] * bound, color=line.get_color(), linestyle="-", linewidth=0.3)
    left.set(xlabel="shared step", ylabel="controller entropy (nats)", title="Entropy of the policy")
    right.set(xlabel="shared step", ylabel="latency of the argmax (ms, lookup table)",
              title="Argmax latency (dotted: target, thin: +-5 %)")
    left.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def report(args: argparse.Namespace, runs: list[dict], image: Path) -> str:
    """The markdown table of the runs."""
    lines = [f"Space `{args.space}`, MNIST-5k at {args.input_size} px, {args.epochs:g} epochs of supernet training "
             f"(batch {args.batch_size}, lr {args.lr:g}), RL batch {args.rl_batch} path(s) x {args.valid_batch_size} "
             f"validation images, RL lr {args.rl_lr:g} growing 10x, beta {args.beta:g} (quality in percent); "
             f"torch {torch.__version__}, one thread, {platform.machine()}, load average "
             f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end.", "",
             "| target (ms) | seed | final argmax (ms) | error | within +-5 % | supernet acc (%) "
             "| entropy start -> end | wall (min) |", "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        entropy = [d["entropy"] for d in r["diagnostics"]]
        lines.append(f"| {r['target']:g} | {r['seed']} | {r['final_latency']:.2f} | {100 * r['error']:+.1f} % | "
                     f"{'yes' if abs(r['error']) <= 0.05 else 'no'} | {r['final_acc']:.1f} | {entropy[0]:.1f} -> "
                     f"{entropy[-1]:.1f} | {r['wall_s'] / 60:.1f} |")
    hits = sum(abs(r["error"]) <= 0.05 for r in runs)
    low, high = runs[0]["range"]
    lines += ["", f"{hits} of {len(runs)} searches end within +-5 % of their target (cost range of the space: "
              f"{low:.2f} to {high:.2f} ms).", "", f"![entropy and argmax latency](../docs/images/{image.name})", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="proxyless")
    parser.add_argument("--targets", type=float, nargs="*", default=[0.25, 0.5, 0.75],
                        help="targets as fractions of the way from the lowest to the highest cost")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--epochs", type=float, default=20)
    parser.add_argument("--input-size", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--valid-batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--rl-lr", type=float, default=0.05)
    parser.add_argument("--rl-batch", type=int, default=1)
    parser.add_argument("--beta", type=float, default=-7.0)
    parser.add_argument("--name", default="targets")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = []
    for seed in args.seeds:
        for fraction in args.targets:
            runs.append(search(args, fraction, seed))
            print(f"target {runs[-1]['target']} seed {seed}: {runs[-1]['final_latency']:.2f} ms "
                  f"({100 * runs[-1]['error']:+.1f} %), {runs[-1]['wall_s']:.0f} s", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    image = IMAGES / f"tunas_{args.name}.png"
    plot(runs, image)
    (RESULTS / f"{args.name}.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    text = report(args, runs, image)
    (RESULTS / f"{args.name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
