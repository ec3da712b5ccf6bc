"""Policy transfer on NAS-Bench-201: queries to reach a target accuracy with and without
``--init-from`` a CIFAR-10 search.

For every agent that can transfer and every seed, one worker runs a CIFAR-10 search
(``--source-queries`` queries), then searches CIFAR-100 and ImageNet16-120 with the same
seed: from scratch and starting from the CIFAR-10 agent (``Study.init_from``, what
``rlnas search --init-from`` does). L2NAS runs three transfer modes (its ``transfer``
config field): architectures only, weights only, both; evolution carries its population,
REINFORCE and PPO their controller. A run reaches the target at the first query whose
best-by-validation cell has a test accuracy of at least the target (default: within 0.5
points of the test accuracy of the data set's best-by-validation cell). Reported per agent
and data set: the share of runs that reached the target within ``--queries`` and the median
and mean of the queries they needed (a run that never reached it counts as ``--queries`` + 1
in the median).

    python benchmarks/nb201_transfer.py                    # default: 20 seeds, 2 workers
    python benchmarks/nb201_transfer.py --agents ppo --seeds 5
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nb201 import _init_worker, _single_thread_torch, evaluator_for

TRANSFER_AGENTS = ("evolution", "reinforce", "ppo", "l2nas")
TRANSFER_MODES = ("architectures", "weights", "both")
"""L2NAS's ``transfer`` config values: what ``--init-from`` carries over."""
CARRIES = {
    "cold": "nothing (from scratch)",
    "architectures": "the source's top-K architectures, proposed first and used as the first state (no weights)",
    "weights": "actor and critic weights only (no architecture is proposed first)",
    "both": "actor and critic weights and the source's top-K architectures",
    "population": "the source's final population, best first, proposed first (evolution)",
    "controller": "the controller's weights (reinforce, ppo)",
}


def modes_of(agent: str) -> tuple[str, ...]:
    """Runs per target data set: from scratch, then each thing the agent can carry over."""
    if agent == "l2nas":
        return ("cold", *TRANSFER_MODES)
    return ("cold", "population" if agent == "evolution" else "controller")
TARGETS = ("cifar100", "imagenet16-120")
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "nb201_transfer"


def target_accuracy(dataset: str, margin: float) -> float:
    """Test accuracy a run must reach: the best-by-validation cell's, minus ``margin``."""
    return evaluator_for(dataset, 200).test_acc_of_best_valid() - margin


def queries_to_target(study: Any, target: float) -> int | None:
    """First query (1-based) at which the best-by-validation cell so far reaches ``target``."""
    best_reward = None
    for query, trial in enumerate(sorted(study.completed_trials, key=lambda t: t.slot), 1):
        if best_reward is None or trial.reward > best_reward:
            best_reward, best_test = trial.reward, trial.metrics["test_acc"]
        if best_test >= target:
            return query
    return None


def run_seed(agent: str, seed: int, source_queries: int, queries: int, margin: float) -> dict[str, Any]:
    """Source search on CIFAR-10, then cold and warm searches on each target data set."""
    from rlnas.study import create_study

    start = time.perf_counter()
    source = create_study(space="nb201", agent=agent, evaluator=evaluator_for("cifar10", 200), seed=seed,
                          checkpoint_every=0, name="source")
    _single_thread_torch()
    source.optimize(source_queries)
    result: dict[str, Any] = {"agent": agent, "seed": seed}
    for dataset in TARGETS:
        target = target_accuracy(dataset, margin)
        for mode in modes_of(agent):
            config = {"transfer": mode} if mode in TRANSFER_MODES else {}
            study = create_study(space="nb201", agent=agent, agent_config=config,
                                 evaluator=evaluator_for(dataset, 200), seed=10_000 + seed, checkpoint_every=0,
                                 name=f"{dataset}-{mode}")
            if mode != "cold":
                study.init_from(source)
            study.optimize(queries)
            result[f"{dataset}/{mode}"] = queries_to_target(study, target)
    result["wall_seconds"] = time.perf_counter() - start
    return result


def summarize(results: list[dict[str, Any]], agents: list[str], queries: int, margin: float) -> str:
    """Markdown table of reach rate and queries to target, from scratch and per transfer mode."""
    lines = [(f"Target: test accuracy of the best-by-validation cell ≥ (the data set's best-by-validation "
             f"cell) − {margin} points; {queries} queries per target run."), "",
             ("| agent | data set | target | start (what --init-from CIFAR-10 carries) | reached | median queries | "
             "mean queries (reached) |"),
             "|---|---|---|---|---|---|---|"]
    for agent in agents:
        for dataset in TARGETS:
            for mode in modes_of(agent):
                found = [r[f"{dataset}/{mode}"] for r in results if r["agent"] == agent]
                reached = [q for q in found if q is not None]
                median = statistics.median(q if q is not None else queries + 1 for q in found)
                mean = f"{statistics.mean(reached):.1f}" if reached else "-"
                label = f"{mode}: {CARRIES[mode]}"
                shown_median = f">{queries}" if median > queries else f"{median:g}"
                lines.append(f"| {agent} | {dataset} | {target_accuracy(dataset, margin):.2f} | {label} | "
                             f"{len(reached)}/{len(found)} | {shown_median} | {mean} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the transfer experiment and write ``results.md`` and ``runs.json``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", default=",".join(TRANSFER_AGENTS), help="comma-separated agents that transfer")
    p.add_argument("--seeds", type=int, default=20, help="seeds per agent (each: a source run, then every target run)")
    p.add_argument("--source-queries", type=int, default=300, help="queries of each source run (CIFAR-10)")
    p.add_argument("--queries", type=int, default=300, help="queries per target run")
    p.add_argument("--margin", type=float, default=0.5, help="target = best-by-validation test acc - margin")
    p.add_argument("--workers", type=int, default=2, help="worker processes")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    a = p.parse_args(argv)
    agents = [x for x in a.agents.split(",") if x]
    for agent in agents:
        if agent not in TRANSFER_AGENTS:
            p.error(f"agent {agent!r} cannot transfer (choices: {', '.join(TRANSFER_AGENTS)})")
    if min(a.seeds, a.source_queries, a.queries, a.workers) < 1:
        p.error("--seeds, --source-queries, --queries and --workers must be positive")
    jobs = [(agent, seed, a.source_queries, a.queries, a.margin) for agent in agents for seed in range(a.seeds)]
    start = time.perf_counter()
    with ProcessPoolExecutor(a.workers, mp_context=get_context("spawn"), initializer=_init_worker) as pool:
        results = list(pool.map(run_seed, *zip(*jobs)))
    wall = time.perf_counter() - start
    a.out.mkdir(parents=True, exist_ok=True)
    table = summarize(results, agents, a.queries, a.margin)
    header = (f"# NAS-Bench-201 policy transfer\n\n`python benchmarks/nb201_transfer.py --agents {','.join(agents)} "
              f"--seeds {a.seeds} --source-queries {a.source_queries} --queries {a.queries} --margin {a.margin} "
              f"--workers {a.workers}`: {wall:.0f} s wall.\n\n")
    (a.out / "results.md").write_text(header + table)
    (a.out / "runs.json").write_text(json.dumps(results, indent=1))
    print(header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
