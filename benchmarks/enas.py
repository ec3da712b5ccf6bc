"""ENAS on MNIST-5k: the PPO controller against the ENAS (REINFORCE) update, and against random children.

For every seed and every arm (``ppo``, ``reinforce`` and the ablation ``reinforce+std``:
REINFORCE with PPO's standardised advantages), one ENAS search (agent ``enas``, evaluator
``shared``, space ``--space``) trains the shared weights for ``--epochs`` epochs on the shipped
5,000-image MNIST subset, alternating each epoch with ``--controller-steps`` controller
updates of ``--batch`` children scored on validation minibatches. After the search its two
answers are retrained from scratch with the train evaluator (``--retrain-epochs`` epochs, the
network as searched, training seed = the seed): the controller's most likely child (*mode*)
and the best of ``--samples`` children sampled from the final controller by shared-weight
validation accuracy (*best sampled*). ENAS's own check: ``--samples`` children drawn
uniformly at random (seeded by the seed) retrained the same way; the best of them by
validation accuracy (*best random*) and their median. Test accuracy is never used to choose.

Also recorded: the controller's entropy at every update (plotted, mean over seeds), the wall
time of each search, the load average. Jobs (searches, retrainings) run in ``--workers``
processes of one torch thread each; every job is seeded, so the numbers do not depend on it.

    python benchmarks/enas.py --workers 2                     # 3 seeds, 8 epochs (about 1.5 h on 2 busy cores)
    python benchmarks/enas.py --seeds 0 --epochs 2 --samples 3 --retrain-epochs 1   # smoke run

Writes ``benchmarks/results/enas/results.md`` (printed too), ``runs.json`` (raw numbers) and the
entropy plot ``docs/images/enas_entropy.png``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "enas"
PLOT = ROOT / "docs" / "images" / "enas_entropy.png"
ARMS: dict[str, dict[str, Any]] = {
    "ppo": {"algo": "ppo"},
    "reinforce": {"algo": "reinforce"},
    "reinforce+std": {"algo": "reinforce", "normalize_advantages": True},
}
"""Agent options of each compared arm; ``reinforce+std`` (REINFORCE with PPO's per-batch standardised
advantages) separates what PPO's several clipped epochs bring from what the standardisation brings."""


def load_average() -> str:
    """The 1/5/15-minute load averages."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def search_job(space: str, arm: str, seed: int, epochs: float, agent: dict[str, Any], samples: int) -> dict:
    """One ENAS search (in memory) and its answers; returns JSON-able results."""
    import torch

    torch.set_num_threads(1)
    from rlnas.evaluators.shared import SharedEvaluator
    from rlnas.retrain import retrain_options, search_answers
    from rlnas.study import create_study

    evaluator = SharedEvaluator(space, dataset="mnist5k", epochs=epochs, threads=1)
    study = create_study(space=space, agent="enas", agent_config={**ARMS[arm], **agent}, evaluator=evaluator,
                         seed=seed, name=f"enas-{arm}-{seed}")
    start = time.perf_counter()
    study.optimize(10_000)  # ends when the epochs are done
    wall = time.perf_counter() - start
    answers = search_answers(study, samples)
    return {
        "arm": arm, "seed": seed, "wall_s": wall, "agent_config": study.agent.config.to_dict(),
        "evaluator": evaluator.spec(), "model_kwargs": retrain_options(study, 1)["model_kwargs"],
        "trials": [{"key": t.key, "shared_acc": t.metrics["shared_acc"]} for t in study.completed_trials],
        "diagnostics": [{"step": step, **values} for step, values in study.diagnostics()],
        "answers": [{"source": a.source, "key": a.key, **a.metrics} for a in answers],
    }


def retrain_job(space: str, key: str, model_kwargs: dict[str, Any], epochs: float, seed: int) -> dict:
    """Train the architecture ``key`` from scratch with the train evaluator on mnist5k."""
    import torch

    torch.set_num_threads(1)
    from rlnas.retrain import retrain
    from rlnas.spaces import create_space

    the_space = create_space(space)
    options = {"dataset": "mnist5k", "epochs": epochs, "model_kwargs": model_kwargs}
    metrics = retrain(the_space, the_space.from_key(key), options, seed=seed, threads=1).metrics
    return {"key": key, **{k: float(metrics[k]) for k in ("valid_acc", "test_acc", "params_m", "train_time_s")}}


def random_keys(space: str, n: int, seed: int) -> list[str]:
    """``n`` architectures drawn uniformly with ``numpy.random.default_rng(seed)``."""
    from rlnas.spaces import create_space

    the_space = create_space(space)
    rng = np.random.default_rng(seed)
    return [the_space.key(the_space.sample(rng)) for _ in range(n)]


def mean_std(values: list[float]) -> str:
    """``mean ± std`` (sample std) in a table cell."""
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if len(v) > 1 else f"{v.mean():.2f}"


def plot_entropy(searches: list[dict], path: Path) -> None:
    """Controller entropy at every update, mean over seeds (band: min-max), one line per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for arm, color in zip(ARMS, ("tab:blue", "tab:orange", "tab:green")):
        runs = [[d["entropy"] for d in s["diagnostics"]] for s in searches if s["arm"] == arm]
        length = min(len(r) for r in runs)
        values = np.array([r[:length] for r in runs])
        x = np.arange(1, length + 1)
        ax.plot(x, values.mean(0), color=color, label=f"{arm} (mean of {len(runs)} seeds)")
        ax.fill_between(x, values.min(0), values.max(0), color=color, alpha=0.2)
    ax.set_xlabel("controller update")
    ax.set_ylabel("entropy of the sampled paths (nats)")
    ax.set_title("ENAS controller entropy during the search (enas_micro, MNIST-5k)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(args: argparse.Namespace, searches: list[dict], retrained: dict[tuple, dict],
           randoms: dict[int, list[dict]], loads: tuple[str, str], total_s: float) -> str:
    """The markdown report."""
    first = searches[0]
    cfg = first["agent_config"]
    ev = first["evaluator"]
    lines = [
        f"### ENAS-PPO vs ENAS-REINFORCE on MNIST-5k: `{args.space}`",
        "",
        f"Command: `python benchmarks/enas.py {' '.join(args.argv)}`".rstrip() + "",
        "",
        f"Setup: shared evaluator on `mnist5k` (3,000 train / 1,000 valid / 1,000 test images), "
        f"{args.epochs:g} epochs of shared training (batch {ev['batch_size']}, SGD lr {ev['lr']} cosine, "
        f"network `{first['model_kwargs']}`); agent `enas` with ENAS's controller settings (LSTM "
        f"{cfg['lstm_hidden']}, temperature {cfg['temperature']}, tanh constant {cfg['tanh_constant']}, entropy "
        f"weight {cfg['entropy_weight']}, baseline decay {cfg['baseline_decay']}) except the CPU-sized "
        f"schedule: Adam lr {cfg['lr']}, {cfg['controller_steps']} controller updates of {cfg['batch_size']} "
        f"children after every epoch (validation minibatches of {ev['valid_batch_size']}); ppo: "
        f"{cfg['ppo_epochs']} epochs per batch, clip {cfg['clip']}, advantages standardised; reinforce+std: "
        f"REINFORCE with the same standardised advantages. Answers and "
        f"{args.samples} random children retrained from scratch for {args.retrain_epochs:g} epochs with the "
        f"train evaluator (network as searched). One torch thread per job, {args.workers} job(s) at a time; "
        f"load average (1/5/15 min) {loads[0]} at the start, {loads[1]} at the end. "
        f"Whole script: {total_s / 60:.1f} min. Seeds {' '.join(map(str, args.seeds))} (of the controller and the "
        "random children; the shared weights start from the evaluator's seed 0 in every run, so the spread leaves "
        "out the shared weights' own seed variance)"
        + (f" (untuned: {' '.join(map(str, args.untuned))})" if args.untuned else "") + ".",
        "",
        "Test accuracy after retraining (mean ± std over seeds):",
        "",
        "| | " + " | ".join(ARMS) + " |",
        "|---|" + "---|" * len(ARMS),
    ]
    for source, label in (("mode", "mode (most likely child)"), ("sampled", f"best of {args.samples} sampled")):
        cells = [mean_std([retrained[(arm, s, source)]["test_acc"] for s in args.seeds]) for arm in ARMS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    best_random = [max(randoms[s], key=lambda r: r["valid_acc"])["test_acc"] for s in args.seeds]
    median_random = [float(np.median([r["test_acc"] for r in randoms[s]])) for s in args.seeds]
    same = " | (same)" * (len(ARMS) - 1)
    walls = [mean_std([s["wall_s"] for s in searches if s["arm"] == arm]) for arm in ARMS]
    entropies = [mean_std([s["diagnostics"][-1]["entropy"] for s in searches if s["arm"] == arm]) for arm in ARMS]
    lines += [
        f"| best of {args.samples} random (by valid acc) | {mean_std(best_random)}{same} |",
        f"| median of {args.samples} random | {mean_std(median_random)}{same} |",
        "| controller entropy at the last update (nats) | " + " | ".join(entropies) + " |",
        "| search wall time (s) | " + " | ".join(walls) + " |",
        "",
        "Per seed (test accuracy after retraining; shared-weight validation accuracy of the answer in brackets; "
        "final entropy = mean path entropy of the last controller update):",
        "",
        "| seed | arm | mode | best sampled | best random | median random | final entropy | search wall time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in searches:
        seed, arm = s["seed"], s["arm"]
        shared = {a["source"]: a["shared_acc"] for a in reversed(s["answers"])}  # the first (best) sampled wins
        mode, sampled = retrained[(arm, seed, "mode")], retrained[(arm, seed, "sampled")]
        lines.append(
            f"| {seed}{' (untuned)' if seed in args.untuned else ''} | {arm} | {mode['test_acc']:.2f} "
            f"({shared['mode']:.1f}) | {sampled['test_acc']:.2f} ({shared['sampled']:.1f}) | "
            f"{max(randoms[seed], key=lambda r: r['valid_acc'])['test_acc']:.2f} | "
            f"{np.median([r['test_acc'] for r in randoms[seed]]):.2f} | {s['diagnostics'][-1]['entropy']:.2f} | "
            f"{s['wall_s']:.0f} s |")
    start_entropy = np.mean([s["diagnostics"][0]["entropy"] for s in searches])
    lines += [
        "",
        f"![controller entropy](../docs/images/{args.plot.name})",
        "",
        f"Entropy at the first update: {start_entropy:.2f} nats on average (a uniform controller: "
        f"{args.uniform_entropy:.2f}). One test image is 0.1 point of accuracy.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="enas_micro", choices=("enas_micro", "enas_macro"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--untuned", type=int, nargs="*", default=[], help="seeds to mark as never tuned on")
    parser.add_argument("--epochs", type=float, default=8, help="epochs of shared-weight training (default 8)")
    parser.add_argument("--controller-steps", type=int, default=10, help="controller updates per epoch (default 10)")
    parser.add_argument("--batch", type=int, default=10, help="children per controller update (default 10)")
    parser.add_argument("--lr", type=float, default=0.0035,
                        help="controller Adam lr (default 0.0035, ENAS's micro-search script; the agent's default "
                             "3.5e-4 barely moves the controller in a CPU-sized number of updates)")
    parser.add_argument("--samples", type=int, default=8, help="sampled and random children per seed (default 8)")
    parser.add_argument("--retrain-epochs", type=float, default=3, help="epochs of retraining (default 3)")
    parser.add_argument("--workers", type=int, default=1, help="jobs at once (default 1)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plot", type=Path, default=PLOT)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.seeds = list(dict.fromkeys(args.seeds + args.untuned))
    from rlnas.spaces import create_space

    args.uniform_entropy = float(sum(np.log(k) for k in create_space(args.space).sizes))
    agent = {"lr": args.lr, "controller_steps": args.controller_steps, "batch_size": args.batch}
    from rlnas.evaluators.shared import SharedEvaluator

    kwargs = SharedEvaluator(args.space, dataset="mnist5k").resolved_model_kwargs()  # the network as searched

    start, load_start = time.perf_counter(), load_average()
    with ProcessPoolExecutor(args.workers) as pool:
        futures = [pool.submit(search_job, args.space, arm, seed, args.epochs, agent, args.samples)
                   for seed in args.seeds for arm in ARMS]
        random_futures = {seed: [] for seed in args.seeds}
        for seed in args.seeds:  # random children need no search: queue them now
            for key in random_keys(args.space, args.samples, seed):
                random_futures[seed].append(pool.submit(retrain_job, args.space, key, kwargs, args.retrain_epochs,
                                                        seed))
        searches = [f.result() for f in futures]
        for s in searches:
            print(f"search {s['arm']} seed {s['seed']}: {s['wall_s']:.0f} s", file=sys.stderr, flush=True)
        jobs = {}
        for s in searches:
            best_sampled = next(a for a in s["answers"] if a["source"] == "sampled")
            for source, key in (("mode", s["answers"][0]["key"]), ("sampled", best_sampled["key"])):
                jobs[(s["arm"], s["seed"], source)] = pool.submit(retrain_job, args.space, key, kwargs,
                                                                   args.retrain_epochs, s["seed"])
        retrained = {k: f.result() for k, f in jobs.items()}
        randoms = {seed: [f.result() for f in fs] for seed, fs in random_futures.items()}
    plot_entropy(searches, args.plot)
    text = render(args, searches, retrained, randoms, (load_start, load_average()), time.perf_counter() - start)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(text, encoding="utf-8")
    raw = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "searches": searches, "retrained": [{"arm": a, "seed": s, "source": src, **v}
                                               for (a, s, src), v in retrained.items()],
           "random": {str(seed): rows for seed, rows in randoms.items()}}
    (args.out / "runs.json").write_text(json.dumps(raw, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
