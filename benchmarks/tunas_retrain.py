"""Retraining TuNAS's answer against random architectures of the same latency band, on MNIST-5k.

Claim checked (issue 9): "after retraining, the found architecture beats the best of as many
random architectures drawn from the same +-5 % latency band, trained the same way, over at
least 3 seeds".

For every seed: the architecture a ``tunas`` search found for the middle latency target (taken
from a ``benchmarks/tunas_search.py`` results file, or searched here with its defaults) and
``--random`` architectures drawn uniformly from the space until that many fall within +-5 % of
the same target (cost-model latency) are each trained from scratch by the ``train`` evaluator
with the same settings and seed (MNIST-5k at the search's input size, ``stem_stride=1``,
width 0.35, ``--epochs`` epochs, channels_last, one thread). The random architecture a random
search would pick is the one with the best validation accuracy; the claim compares test
accuracies (never seen by the search) of the found architecture and that pick.

    python benchmarks/tunas_retrain.py --searches benchmarks/results/tunas_search/targets.json \
        benchmarks/results/tunas_search/untuned.json

Writes ``benchmarks/results/tunas_retrain/results.md`` (printed too) and ``runs.json``.
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

from rlnas.costs.models import create_cost_model
from rlnas.evaluators.train import TrainEvaluator
from rlnas.spaces import create_space

RESULTS = Path(__file__).resolve().parent / "results" / "tunas_retrain"


def band_sample(space, cost, target: float, n: int, seed: int) -> tuple[list, int]:
    """``n`` uniform random candidates whose cost is within +-5 % of ``target``, and how many draws it took."""
    rng = np.random.default_rng(seed)
    found, draws = [], 0
    while len(found) < n:
        cand = space.sample(rng)
        draws += 1
        if abs(cost(cand) / target - 1) <= 0.05:
            found.append(cand)
    return found, draws


def train(evaluator: TrainEvaluator, cand, seed: int) -> dict[str, float]:
    """Train ``cand`` from scratch; its validation and test accuracy and training seconds."""
    m = evaluator.evaluate(cand, seed=seed)
    return {"valid_acc": m.metrics["valid_acc"], "test_acc": m.metrics["test_acc"], "seconds": m.cost_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--searches", nargs="+", required=True, help="JSON files written by benchmarks/tunas_search.py")
    parser.add_argument("--fraction", type=float, default=0.5, help="which target of the searches file")
    parser.add_argument("--random", type=int, default=3, help="random architectures per seed")
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()
    torch.set_num_threads(1)
    files = [json.loads(Path(path).read_text()) for path in args.searches]
    options = files[0]["args"]
    searches = [r for data in files for r in data["runs"] if r["fraction"] == args.fraction]
    space = create_space(options["space"])
    kwargs = {"width_mult": 0.35, "stem_stride": 1, "input_size": options["input_size"]}
    cost = create_cost_model(space, "latency", model_kwargs={**kwargs, "num_classes": 10, "in_channels": 1})
    evaluator = TrainEvaluator(space, "mnist5k", epochs=args.epochs, lr=args.lr, model_kwargs=kwargs,
                               channels_last=True, threads=1)
    runs = []
    for search in sorted(searches, key=lambda r: r["seed"]):
        seed, target = search["seed"], search["target"]
        start = time.perf_counter()
        found = train(evaluator, space.from_key(search["final_key"]), seed)
        randoms, draws = band_sample(space, cost, target, args.random, 1000 + seed)
        trained = [train(evaluator, cand, seed) | {"latency": cost(cand)} for cand in randoms]
        pick = max(trained, key=lambda r: r["valid_acc"])
        runs.append({"seed": seed, "target": target, "found": found | {"latency": search["final_latency"],
                     "key": search["final_key"]}, "random": trained, "pick": pick, "draws": draws,
                     "seconds": time.perf_counter() - start})
        print(f"seed {seed}: found {found['test_acc']:.1f}, random pick {pick['test_acc']:.1f} "
              f"(best test {max(r['test_acc'] for r in trained):.1f})", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "runs.json").write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1))
    sources = ", ".join(f"`{path}`" for path in args.searches)
    lines = [f"Space `{space.name}`, searches from {sources} (target {args.fraction:g} of the way through the "
             f"cost range); every architecture trained {args.epochs:g} epochs on MNIST-5k at "
             f"{options['input_size']} px "
             f"(lr {args.lr:g}, batch 64, seed = search seed), {args.random} random architecture(s) per seed from the "
             f"+-5 % band; torch {torch.__version__}, one thread, {platform.machine()}, load average "
             f"{' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end.", "",
             "| seed | target (ms) | found: latency, valid / test acc (%) | random (latency, valid / test acc) "
             "| random pick's test acc | found beats the pick | found beats every random |",
             "|---|---|---|---|---|---|---|"]
    for r in runs:
        f = r["found"]
        others = ", ".join(f"{x['latency']:.1f} ms {x['valid_acc']:.1f} / {x['test_acc']:.1f}" for x in r["random"])
        lines.append(f"| {r['seed']} | {r['target']:g} | {f['latency']:.2f} ms, {f['valid_acc']:.1f} / "
                     f"{f['test_acc']:.1f} | {others} | {r['pick']['test_acc']:.1f} | "
                     f"{'yes' if f['test_acc'] > r['pick']['test_acc'] else 'no'} | "
                     f"{'yes' if all(f['test_acc'] > x['test_acc'] for x in r['random']) else 'no'} |")
    found = [r["found"]["test_acc"] for r in runs]
    picks = [r["pick"]["test_acc"] for r in runs]
    lines += ["", f"Mean test accuracy: found {np.mean(found):.2f} %, random pick {np.mean(picks):.2f} % "
              f"({sum(a > b for a, b in zip(found, picks))} of {len(runs)} seeds won by the found architecture).", ""]
    text = "\n".join(lines)
    (RESULTS / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
