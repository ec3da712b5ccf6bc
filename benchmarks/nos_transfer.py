"""The best rule of the optimizer search, moved to another network and data set.

Claim checked: "the best found rule, moved to a different task (another network and data set),
is compared with Adam, SGD-momentum, PowerSign and AddSign, each at its best learning rate from
the same grid, over 3 seeds".

Task: the shipped 8x8 digits (not MNIST-5k) with an MLP of two hidden layers of 64 units (not
the search's ConvNet), ``--steps`` steps of batch 32. Every optimizer is trained at every
learning rate of the search's grid on ``--seeds`` (initial weights and batch order); its best
learning rate is the one with the highest mean validation accuracy; test accuracy at that
learning rate is reported. Learning curves (validation accuracy and training loss every 10
steps, mean over the seeds, at the best learning rate) go to ``curves.png``.

    python benchmarks/nos_transfer.py                       # rule from nos_search/ppo-seed0.json
    python benchmarks/nos_transfer.py --rule "sign(m) * 1"

Writes ``benchmarks/results/nos_transfer/results.md``, ``runs.json`` and ``curves.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import torch

from rlnas.evaluators.optimizer import OptimizerEvaluator, rule_optimizer
from rlnas.optim.rule import as_rule

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "nos_transfer"
SEARCH = HERE / "results" / "nos_search" / "ppo-seed0.json"
GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def optimizers(found: str) -> dict:
    return {
        f"found: `{found}`": rule_optimizer(as_rule(found)),
        "torch Adam": lambda params, lr, seed, steps: torch.optim.Adam(params, lr=lr),
        "torch SGD momentum 0.9": lambda params, lr, seed, steps: torch.optim.SGD(params, lr=lr, momentum=0.9),
        "PowerSign": rule_optimizer("powersign"),
        "AddSign": rule_optimizer("addsign"),
    }


def mean_curve(curves: list[dict[str, list[float]]], key: str) -> list[float]:
    return [statistics.mean(values) for values in zip(*(c[key] for c in curves))]


def plot(rows: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, loss) = plt.subplots(1, 2, figsize=(11, 4))
    for label, row in rows.items():
        name = label.replace("`", "")
        steps = row["curve"]["step"]
        acc.plot(steps, row["curve"]["valid_acc"], label=f"{name} (lr {row['best_lr']:g})")
        loss.plot(steps, row["curve"]["train_loss"], label=name)
    acc.set(xlabel="training step", ylabel="validation accuracy (%)", ylim=(50, 100),
            title="digits, MLP 64-64: validation accuracy")
    loss.set(xlabel="training step", ylabel="training loss", yscale="log", title="training loss")
    acc.legend(fontsize=7, loc="lower right")
    for ax in (acc, loss):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rule", default=None, help="rule to move (default: best_found of the seed-0 PPO search)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    found = args.rule or json.loads(SEARCH.read_text())["best_found"]
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    evaluator = OptimizerEvaluator(dataset="digits", network="mlp", network_options={"hidden": [64, 64]},
                                   steps=args.steps, batch_size=32, lr_grid=GRID, threads=1)
    rows = {}
    for label, make in optimizers(found).items():
        runs = {lr: [evaluator.train(make, lr, steps=args.steps, seed=s, record_every=10) for s in args.seeds]
                for lr in GRID}
        score = {lr: statistics.mean(r.valid_acc if r.valid_acc is not None else 0.0 for r in rs)
                 for lr, rs in runs.items()}
        best_lr = max(score, key=lambda lr: (score[lr], -lr))
        best = runs[best_lr]
        rows[label] = {
            "best_lr": best_lr, "valid": [r.valid_acc or 0.0 for r in best], "test": [r.test_acc or 0.0 for r in best],
            "train_loss": [r.train_loss for r in best], "valid_by_lr": {f"{lr:g}": s for lr, s in score.items()},
            "diverged_at": {f"{lr:g}": sum(r.diverged is not None for r in rs) for lr, rs in runs.items()},
            "curve": {"step": best[0].curve["step"], "valid_acc": mean_curve([r.curve for r in best], "valid_acc"),
                      "train_loss": mean_curve([r.curve for r in best], "train_loss")}
            if all(r.diverged is None for r in best) else {"step": [], "valid_acc": [], "train_loss": []},
        }
        print(f"  {label}: lr {best_lr:g} valid {score[best_lr]:.2f}", file=sys.stderr, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "runs.json").write_text(json.dumps({"rule": found, "args": vars(args), "rows": rows}, indent=1))
    plot(rows, RESULTS / "curves.png")

    def mean_sd(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"

    lines = [(f"Moved rule: `{found}` (the best found rule of the seed-0 search unless `--rule` was given). "
             f"Task: digits, MLP 64-64, {args.steps} steps of batch 32, seeds {args.seeds}, grid {list(GRID)}; "
             f"load average at start {load}.\n"),
             "| optimizer | best lr | valid acc | test acc | final train loss |", "|---|---:|---:|---:|---:|"]
    for label, row in sorted(rows.items(), key=lambda kv: -statistics.mean(kv[1]["test"])):
        losses = [x for x in row["train_loss"] if x is not None]
        lines.append(f"| {label} | {row['best_lr']:g} | {mean_sd(row['valid'])} | {mean_sd(row['test'])} | "
                     f"{statistics.mean(losses) if losses else float('nan'):.4f} |")
    lines += ["", "Mean over the seeds at each optimizer's best lr:", "", "![learning curves](curves.png)", ""]
    (RESULTS / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
