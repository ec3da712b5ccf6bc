"""Does TuNAS's supernet rank the architectures of one latency band, and how noisy is retraining?

Why the retrain comparison of ``benchmarks/tunas_retrain.py`` can be won or lost by chance:
within a +-5 % latency band the controller can only pick well if (a) the supernet's accuracy
with inherited weights orders the band's architectures like their stand-alone accuracy does, and
(b) those stand-alone accuracies differ by more than the noise of measuring them.

This benchmark measures both, on one search (``--seed``, the middle target, the settings of
``benchmarks/tunas_search.py``): after the search, ``--archs`` architectures drawn uniformly
from the answer's +-5 % band, plus the answer, are each

* scored by the final supernet with inherited weights on the whole validation split (the
  signal the recorded trials and, on minibatches, the controller's rewards use), and
* trained from scratch by the ``train`` evaluator exactly as ``tunas_retrain.py`` does
  (``--epochs`` epochs, lr 0.05, width 0.35, ``stem_stride=1``), once per training seed in
  ``--train-seeds``.

Reported: Kendall's tau and Spearman's rho of supernet accuracy against the mean stand-alone
test (and validation) accuracy; the agreement of two training seeds with each other (the best any
predictor can do); the noise floor: the standard deviation of one architecture's test accuracy
over training seeds, the binomial standard error of an accuracy on the test split, against the
spread of the band's mean accuracies; and where the answer ranks in its band.

    python benchmarks/tunas_ranking.py             # search seed 0, 12 archs, 3 training seeds
    python benchmarks/tunas_ranking.py --seed 1    # the same on a seed not tuned on

Writes ``benchmarks/results/tunas_ranking/seed<N>.md`` (printed too) and ``seed<N>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from rlnas.evaluators.supernet import SupernetEvaluator
from rlnas.evaluators.train import TrainEvaluator
from rlnas.spaces import create_space
from rlnas.study import create_study
from rlnas.study._weight_sharing import planned_trials
from rlnas.trial import TrialState

RESULTS = Path(__file__).resolve().parent / "results" / "tunas_ranking"
SEARCH = {"space": "proxyless", "epochs": 20.0, "input_size": 16, "batch_size": 64, "valid_batch_size": 128,
          "lr": 0.1, "rl_lr": 0.05, "rl_batch": 1, "beta": -7.0, "fraction": 0.5}
"""The settings of ``benchmarks/tunas_search.py`` (its defaults) for the middle target."""


def band_sample(space, cost, target: float, n: int, seed: int) -> list:
    """``n`` uniform random candidates whose cost is within +-5 % of ``target``."""
    rng = np.random.default_rng(seed)
    found: list = []
    while len(found) < n:
        cand = space.sample(rng)
        if abs(cost(cand) / target - 1) <= 0.05:
            found.append(cand)
    return found


def search(seed: int) -> tuple[SupernetEvaluator, str, float]:
    """The middle-target search of ``tunas_search.py``; its trained evaluator, answer key and target."""
    s = SEARCH
    evaluator = SupernetEvaluator(s["space"], "mnist5k", epochs=s["epochs"], batch_size=s["batch_size"],
                                  valid_batch_size=s["valid_batch_size"], lr=s["lr"], seed=seed, threads=1,
                                  model_kwargs={"width_mult": 0.35, "stem_stride": 1, "input_size": s["input_size"]})
    low, high = evaluator.cost_model.range()
    target = round(low + s["fraction"] * (high - low), 2)
    reward = {"name": "abs", "metric": "supernet_acc", "cost": "latency_ms", "target": target, "beta": s["beta"]}
    study = create_study(space=s["space"], agent="tunas", agent_config={"lr": s["rl_lr"], "batch_size": s["rl_batch"]},
                         evaluator=evaluator, reward=reward, seed=seed, name=f"tunas-ranking-{seed}")
    study.optimize(planned_trials(study))
    final = max((t for t in study.trials if t.state is TrialState.COMPLETE), key=lambda t: t.slot)
    return evaluator, final.key, target


def tau_rho(x, y) -> str:
    """Kendall's tau and Spearman's rho of two sequences, formatted."""
    tau, p_tau = stats.kendalltau(x, y)
    rho, _ = stats.spearmanr(x, y)
    return f"tau {tau:+.2f} (p {p_tau:.2f}), rho {rho:+.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="search seed")
    parser.add_argument("--archs", type=int, default=12, help="random architectures from the band")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=5, help="retraining epochs")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--cache", help="save the searched supernet here, or load it if the file exists")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    space = create_space(SEARCH["space"])
    if args.cache and Path(args.cache).exists():
        saved = torch.load(args.cache, weights_only=False)
        evaluator = SupernetEvaluator(SEARCH["space"], "mnist5k", epochs=SEARCH["epochs"], seed=args.seed, threads=1,
                                      batch_size=SEARCH["batch_size"], valid_batch_size=SEARCH["valid_batch_size"],
                                      lr=SEARCH["lr"], model_kwargs={"width_mult": 0.35, "stem_stride": 1,
                                                                     "input_size": SEARCH["input_size"]})
        evaluator.load_state_dict(saved["state"])
        key, target = saved["key"], saved["target"]
    else:
        evaluator, key, target = search(args.seed)
        if args.cache:
            torch.save({"state": evaluator.state_dict(), "key": key, "target": target}, args.cache)
    print(f"search done ({time.perf_counter() - start:.0f} s), answer {key}", flush=True)
    cost = evaluator.cost_model
    archs = [space.from_key(key)] + band_sample(space, cost, target, args.archs, 2000 + args.seed)
    kwargs = {"width_mult": 0.35, "stem_stride": 1, "input_size": SEARCH["input_size"]}
    trainer = TrainEvaluator(space, "mnist5k", epochs=args.epochs, lr=args.lr, model_kwargs=kwargs,
                             channels_last=True, threads=1)
    rows = []
    for i, cand in enumerate(archs):
        row = {"key": space.key(cand), "answer": i == 0, "latency": cost(cand),
               "supernet_valid": evaluator.evaluate(cand, split="valid").metrics["supernet_acc"], "runs": []}
        for seed in args.train_seeds:
            m = trainer.evaluate(cand, seed=seed)
            row["runs"].append({"seed": seed, "valid_acc": m.metrics["valid_acc"], "test_acc": m.metrics["test_acc"],
                                "curve": m.info["curve"]["valid_acc"], "seconds": m.cost_seconds})
        rows.append(row)
        print(f"arch {i}: supernet {row['supernet_valid']:.1f}, test "
              f"{[r['test_acc'] for r in row['runs']]}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"seed{args.seed}.json").write_text(json.dumps({"args": vars(args), "search": SEARCH, "target": target,
                                                   "rows": rows}, indent=1))
    text = report(args, rows, target, len(trainer.data.test), time.perf_counter() - start)
    (RESULTS / f"seed{args.seed}.md").write_text(text)
    print(text)


def report(args: argparse.Namespace, rows: list[dict], target: float, n_test: int, wall: float) -> str:
    """The markdown report of one ranking run."""
    supernet = np.array([r["supernet_valid"] for r in rows])
    test = np.array([[x["test_acc"] for x in r["runs"]] for r in rows])
    valid = np.array([[x["valid_acc"] for x in r["runs"]] for r in rows])
    mean_test, mean_valid = test.mean(1), valid.mean(1)
    within = np.sqrt(test.var(1, ddof=1).mean()) if test.shape[1] > 1 else float("nan")
    p = mean_test.mean() / 100
    binomial = 100 * np.sqrt(p * (1 - p) / n_test)
    between = mean_test.std(ddof=1)
    # Spread of the band's true means: the variance of the means less what the training noise explains.
    true_spread = np.sqrt(max(between ** 2 - within ** 2 / test.shape[1], 0.0))
    rank = 1 + int((mean_test > mean_test[0]).sum())
    seeds = args.train_seeds
    lines = [f"Search seed {args.seed}, space `{SEARCH['space']}`, target {target:g} ms (the middle one) with the "
             f"settings of `tunas_search.py`; {len(rows) - 1} random architectures from the +-5 % band plus the "
             f"answer (row 0). Supernet accuracy: final shared weights, whole validation split. Stand-alone: "
             f"{args.epochs:g} epochs from scratch (lr {args.lr:g}, as `tunas_retrain.py`), training seeds "
             f"{', '.join(map(str, seeds))}; test split {n_test} images. torch {torch.__version__}, one thread, "
             f"{platform.machine()}, {wall / 60:.0f} min, load average "
             f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end.", "",
             "| arch | latency (ms) | supernet valid acc | stand-alone valid acc per seed | stand-alone test acc "
             "per seed | mean test acc |", "|---|---|---|---|---|---|"]
    for i, r in enumerate(rows):
        lines.append(f"| {'answer' if r['answer'] else i} | {r['latency']:.2f} | {r['supernet_valid']:.1f} | "
                     f"{' / '.join(f'{v:.1f}' for v in valid[i])} | {' / '.join(f'{v:.1f}' for v in test[i])} | "
                     f"{mean_test[i]:.2f} |")
    lines += ["", "Ranking (all rows):", "",
              f"- supernet accuracy vs mean stand-alone test accuracy: {tau_rho(supernet, mean_test)}",
              f"- supernet accuracy vs mean stand-alone valid accuracy: {tau_rho(supernet, mean_valid)}"]
    if len(seeds) > 1:
        lines.append(f"- stand-alone test accuracy, training seed {seeds[0]} vs seed {seeds[1]} (the ceiling of any "
                     f"predictor): {tau_rho(test[:, 0], test[:, 1])}")
        lines.append(f"- stand-alone valid vs test accuracy, seed {seeds[0]}: {tau_rho(valid[:, 0], test[:, 0])}")
        lines.append(f"- stand-alone valid vs test accuracy, mean of all seeds: {tau_rho(mean_valid, mean_test)}")
    lines += ["", "Noise floor (test accuracy, percentage points):", "",
              f"- one architecture over training seeds: standard deviation {within:.2f}",
              f"- binomial standard error of one accuracy on {n_test} test images: {binomial:.2f}",
              f"- spread of the band's mean accuracies: standard deviation {between:.2f} (range "
              f"{mean_test.min():.2f} to {mean_test.max():.2f}); less the training noise of a {len(seeds)}-seed mean: "
              f"{true_spread:.2f}",
              f"- the answer's mean test accuracy ranks {rank} of {len(rows)} in its band", ""]
    curves = np.array([[x["curve"] for x in r["runs"]] for r in rows])  # arch, seed, epoch
    if len(seeds) > 1:
        lines += ["Stand-alone validation accuracy after each epoch of the same runs (one cosine schedule over all "
                  "epochs, so an early epoch is not a shorter training's end):", "",
                  "| epoch | mean acc | sd over seeds | sd of the band's means | tau seed vs seed | tau supernet vs "
                  "mean |", "|---|---|---|---|---|---|"]
        for e in range(curves.shape[2]):
            v = curves[:, :, e]
            lines.append(f"| {e + 1} | {v.mean():.2f} | {np.sqrt(v.var(1, ddof=1).mean()):.2f} | "
                         f"{v.mean(1).std(ddof=1):.2f} | {stats.kendalltau(v[:, 0], v[:, 1])[0]:+.2f} | "
                         f"{stats.kendalltau(supernet, v.mean(1))[0]:+.2f} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
