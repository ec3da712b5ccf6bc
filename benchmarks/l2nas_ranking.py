"""L²NAS: how well does the critic rank its candidates, and what would a perfect ranking give?

With learning, every actor proposal is one architecture picked out of a pool of new
candidates (``pool`` = 32, drawn by noise around the actor's action): the critic's ranking is
where learning enters the search. This benchmark follows the default agent on the NB201 tables
and, at every such pick, records where the picked candidate stands in its pool by true
validation accuracy (normalised rank: 0 = the pool's best, 1 = its worst). On the same pools,
the same rank for other pickers: the nearest new candidate (what ``learn=false`` takes), a
uniformly random one (0.5 in expectation), and two classical surrogate models fitted on the
critic's own targets (the rewards' z-scores w.r.t. the elite): ridge regression on the one-hot
features and their pairwise products, and a Gaussian process with a Hamming-distance kernel.
A second run per seed lets the true validation accuracy rank the pools (an oracle critic):
how soon it finds the validation optimum is the headroom a better-ranking critic would have.

    python benchmarks/l2nas_ranking.py --seeds 30 --first-seed 100
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import _blas_one_thread  # noqa: F401  (one BLAS thread, before NumPy loads)
import numpy as np
from l2nas_tuning import incumbent, table

from rlnas.agents.l2nas import L2NASAgent

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
PICKERS = ("critic", "nearest new", "random", "ridge (pairs)", "GP (Hamming)")
POINTS = (50, 100, 200)


def pair_features(x: np.ndarray) -> np.ndarray:
    """One-hot rows, all their pairwise products and a constant."""
    upper = np.triu_indices(x.shape[1], 1)
    pairs = (x[:, :, None] * x[:, None, :])[:, upper[0], upper[1]]
    return np.hstack([x, pairs, np.ones((len(x), 1))])


def ridge_scores(x: np.ndarray, y: np.ndarray, candidates: np.ndarray, penalty: float = 10.0) -> np.ndarray:
    """Predictions of a ridge regression on :func:`pair_features`."""
    f = pair_features(x)
    weights = np.linalg.solve(f.T @ f + penalty * np.eye(f.shape[1]), f.T @ y)
    return pair_features(candidates) @ weights


def gp_scores(x: np.ndarray, y: np.ndarray, candidates: np.ndarray, length: float = 2.0,
              noise: float = 0.1) -> np.ndarray:
    """Posterior mean of a Gaussian process with kernel ``exp(-hamming / length)`` (constant mean)."""
    def kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-((a[:, None, :] != b[None, :, :]).sum(-1) / 2) / length)
    mean = y.mean()
    alpha = np.linalg.solve(kernel(x, x) + noise * np.eye(len(x)), y - mean)
    return kernel(candidates, x) @ alpha + mean


class RankingProbe(L2NASAgent):
    """The default agent, recording how every picker ranks each pool; ``oracle`` ranks by the truth."""

    def __init__(self, space: Any, valid: np.ndarray, radix: np.ndarray, oracle: bool, seed: int):
        super().__init__(space, {}, seed=seed)
        self.valid, self.radix, self.oracle = valid, radix, oracle
        self.ranks: dict[str, list[float]] = {name: [] for name in PICKERS}
        self.told_x: list[np.ndarray] = []
        self.told_r: list[float] = []
        self.picker_rng = np.random.default_rng(seed + 10_000)

    def _score(self, state: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        scores = super()._score(state, candidates)
        truth = np.nan_to_num(self.valid[self._argmax(candidates) @ self.radix], nan=-np.inf)
        if len(candidates) < 2:                                       # a q_pred call, not a pick
            return scores
        rank = np.argsort(np.argsort(-truth, kind="stable"), kind="stable") / (len(truth) - 1)
        x, y = np.array(self.told_x), self.scale(np.array(self.told_r))
        picks = {"critic": int(np.argmax(scores)), "nearest new": 0,
                 "random": int(self.picker_rng.integers(len(truth))),
                 "ridge (pairs)": int(np.argmax(ridge_scores(x, y, candidates))),
                 "GP (Hamming)": int(np.argmax(gp_scores(x, y, candidates)))}
        for name, pick in picks.items():
            self.ranks[name].append(float(rank[pick]))
        return truth if self.oracle else scores

    def tell(self, results: Sequence[Any]) -> dict[str, float]:
        for proposal, reward in results:
            if reward is not None:
                self.told_x.append(self.encode_indices(self.space.indices(proposal.candidate)))
                self.told_r.append(float(reward))
        return super().tell(results)


def run_one(job: tuple[str, int, bool, int]) -> dict[str, Any]:
    """One search: per query the validation and test accuracy, the query of the optimum, the pick ranks."""
    dataset, seed, oracle, queries = job
    space, tab = table("nb201", dataset)
    agent = RankingProbe(space, tab.valid, tab.radix, oracle, seed)
    valid, test, found = np.full(queries, np.nan), np.full(queries, np.nan), None
    for q in range(queries):
        (proposal,) = agent.ask()
        code = int(np.asarray(space.indices(proposal.candidate)) @ tab.radix)
        agent.tell([(proposal, None if math.isnan(tab.valid[code]) else float(tab.valid[code]))])
        valid[q], test[q] = tab.valid[code], tab.test[code]
        if found is None and code in tab.optimum:
            found = q + 1
    return {"valid": valid, "test": test, "found": found,
            "ranks": {name: float(np.mean(r)) for name, r in agent.ranks.items()}}


def mean_se(values: Sequence[float]) -> str:
    """``mean ± standard error``."""
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.3f} ± {a.std(ddof=1) / math.sqrt(len(a)):.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run critic and oracle searches on every data set and print the two tables per data set."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=30)
    p.add_argument("--first-seed", type=int, default=100)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    a = p.parse_args(argv)
    seeds = range(a.first_seed, a.first_seed + a.seeds)
    jobs = [(d, s, oracle, a.queries) for d in DATASETS for oracle in (False, True) for s in seeds]
    load, start = os.getloadavg()[0], time.perf_counter()
    with ProcessPoolExecutor(a.workers, mp_context=get_context("fork")) as pool:
        runs = list(pool.map(run_one, jobs, chunksize=2))
    print(f"{a.seeds} seeds ({seeds[0]}-{seeds[-1]}) per data set, {a.queries} queries, default l2nas; "
          f"{time.perf_counter() - start:.0f} s on {a.workers} worker(s), load average {load:.2f} before.")
    for d in DATASETS:
        mine = {oracle: [r for j, r in zip(jobs, runs) if j[0] == d and j[2] == oracle] for oracle in (False, True)}
        print(f"\n### {d}\n\nNormalised rank (0 = best, 1 = worst, by true validation accuracy) of the candidate "
              "each picker takes from the critic's pools, mean over runs ± standard error:\n")
        print("| " + " | ".join(PICKERS) + " |\n|" + "---|" * len(PICKERS))
        print("| " + " | ".join(mean_se([r["ranks"][name] for r in mine[False]]) for name in PICKERS) + " |")
        print("\nThe same agent with the critic's ranking and with the oracle's: test (validation) accuracy of the "
              "best-by-validation cell, and the query at which the validation optimum was first evaluated "
              f"(runs that did not find it count as {a.queries + 1}):\n")
        points = [q for q in POINTS if q <= a.queries]
        print("| ranking | " + " | ".join(f"{q} queries" for q in points) + " | "
              + " | ".join(f"found by {q}" for q in points) + " | found at (mean) |")
        print("|---|" + "---|" * (2 * len(points) + 1))
        for oracle, label in ((False, "critic"), (True, "oracle (true validation accuracy)")):
            group = mine[oracle]
            cells = []
            for q in points:
                pairs = np.array([incumbent(r, q) for r in group])
                cells.append(f"{pairs[:, 1].mean():.2f} ({pairs[:, 0].mean():.2f})")
            found = np.array([r["found"] or a.queries + 1 for r in group])
            cells += [f"{np.sum(found <= q)}/{len(group)}" for q in points]
            print(f"| {label} | " + " | ".join(cells) + f" | {found.mean():.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
