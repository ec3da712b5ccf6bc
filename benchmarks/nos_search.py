"""Neural Optimizer Search on the CPU: does a controller find rules that beat SGD with momentum?

Claim checked: "a search on the CPU (MNIST-5k child, a small ConvNet) finds rules that beat SGD
with momentum at its best learning rate on the child task".

Search: an LSTM controller (``--agent``, PPO by default, batches of 10) writes one-iteration
rules of the ``optimizer_rules`` space; every rule trains the child (the evaluator's small
ConvNet on the shipped MNIST-5k, batch 64) at every learning rate of the grid, and the reward is
the best validation accuracy. The training budget grows over the search (``--schedule``,
``--steps``); rules that diverge at every learning rate are stored FAIL and learned as reward 0
(``fail_reward``). The study is driven through ``create_study`` and ``ask``/``tell`` so that
each trial gets the schedule's budget of its slot; it is stored in SQLite under ``--db-dir``,
so an interrupted run resumes where it stopped.

Check: the best distinct rules of the search (top ``--top`` of the last budget, top 3 of the
first) are trained again on the child task with ``--steps`` steps on seeds never used by the
search, together with ``torch.optim.SGD`` (momentum 0.9), ``torch.optim.Adam`` and the PowerSign
and AddSign rules, each at its best learning rate of the same grid (best by mean validation
accuracy over the seeds). Test accuracy is reported, never used.

    python benchmarks/nos_search.py --seed 0                    # about 40 min on a busy 2-core machine
    python benchmarks/nos_search.py --report                    # rebuild results.md from the JSON files
    python benchmarks/nos_search.py --seed 0 --fresh            # re-train the check of the stored search

Writes ``benchmarks/results/nos_search/<agent>-seed<seed>.json`` and ``results.md`` (every JSON file
of the folder, one section each).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rlnas.evaluators.optimizer import OptimizerEvaluator, rule_optimizer
from rlnas.optim.rule import as_rule
from rlnas.spaces.optimizer_rules import OptimizerRulesSpace
from rlnas.study import create_study, evaluation_seed
from rlnas.trial import TrialState

RESULTS = Path(__file__).resolve().parent / "results" / "nos_search"
GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
BASELINES: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "torch SGD momentum 0.9": lambda params, lr, seed, steps: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "torch Adam": lambda params, lr, seed, steps: torch.optim.Adam(params, lr=lr),
    "PowerSign": rule_optimizer("powersign"),
    "AddSign": rule_optimizer("addsign"),
}
SGDM = "torch SGD momentum 0.9"
CONTROLLER = {"controller": "lstm", "temperature": None, "tanh_constant": None, "entropy_weight": 0.0}
"""The controller the stored results were made with (the library's defaults then): a plain LSTM
softmax, no entropy bonus, PPO advantages standardised per batch."""


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def parse_schedule(text: str) -> list[list[int]]:
    """``"0:100,100:200"`` -> ``[[0, 100], [100, 200]]``."""
    return [[int(a), int(b)] for a, b in (part.split(":") for part in text.split(","))]


def search(args: argparse.Namespace, evaluator: OptimizerEvaluator) -> dict[str, Any]:
    """Run (or resume) the study; every trial as a plain dict."""
    Path(args.db_dir).mkdir(parents=True, exist_ok=True)
    name = f"nos-{args.agent}-seed{args.seed}"
    config = {"batch_size": args.batch_size, "fail_reward": 0.0, **CONTROLLER}
    if args.agent == "ppo":
        config["center_advantages"] = True
    if args.agent == "random":  # the no-learning ablation: same rules budget, uniform proposals
        config = {}
    study = create_study(space=OptimizerRulesSpace(1), agent=args.agent, agent_config=config, evaluator=evaluator,
                         seed=args.seed, name=name, storage=f"sqlite:///{Path(args.db_dir) / name}.db",
                         load_if_exists=True, checkpoint_every=args.batch_size if config else 50)
    start = time.perf_counter()
    done_before = study.n_finished
    while study.n_finished < args.trials:
        trial = study.ask()
        candidate = study.proposal_of(trial).candidate
        try:
            measurement = evaluator.evaluate(candidate, budget=evaluator.budget_for(trial.slot),
                                             seed=evaluation_seed(study.seed, trial.slot))
        except Exception as exc:  # noqa: BLE001 - as Study.optimize: the trial fails, the search goes on
            study.tell(trial, None, state=TrialState.FAIL, error=f"{type(exc).__name__}: {exc}")
        else:
            study.tell(trial, measurement)
        if study.n_finished % 10 == 0:
            best = study.best_trial
            print(f"  {study.n_finished}/{args.trials} trials, {time.perf_counter() - start:.0f} s, best "
                  f"{best.reward if best else None} {best.key if best else ''} (load {load_average()})",
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - start
    trials = [{"number": t.number, "slot": t.slot, "rule": t.key, "state": t.state.value, "reward": t.reward,
               "best_lr": t.metrics.get("best_lr"), "test_acc": t.metrics.get("test_acc"),
               "steps": evaluator.budget_for(t.slot), "error": t.error}
              for t in sorted(study.trials, key=lambda t: t.slot) if not t.orphaned]
    return {"study": name, "wall_s": wall, "trials_this_run": study.n_finished - done_before, "trials": trials,
            "agent_config": study.agent.config.to_dict(), "diagnostics": study.diagnostics()}


def shortlist(trials: list[dict[str, Any]], top: int) -> list[str]:
    """The ``top`` best distinct rules trained with the last budget, plus the 3 best of the first."""
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    budgets = sorted({t["steps"] for t in complete})
    chosen: list[str] = []
    for steps, n in ((budgets[-1], top), (budgets[0], top + 3)):
        for t in sorted((t for t in complete if t["steps"] == steps), key=lambda t: (-t["reward"], t["slot"])):
            if len(chosen) >= n:
                break
            if t["rule"] not in chosen:
                chosen.append(t["rule"])
    return chosen


def recheck(evaluator: OptimizerEvaluator, optimizers: dict[str, Callable[..., Any]], seeds: list[int],
            steps: int) -> dict[str, Any]:
    """Each optimizer at every grid lr on every seed; the best lr by mean validation accuracy."""
    out = {}
    for label, make in optimizers.items():
        per_lr: dict[float, list[tuple[float | None, float | None]]] = {lr: [] for lr in evaluator.lr_grid}
        for seed in seeds:
            for lr in evaluator.lr_grid:
                run = evaluator.train(make, lr, steps=steps, seed=seed)
                per_lr[lr].append((run.valid_acc, run.test_acc))
        scored = {lr: statistics.mean(v if v is not None else 0.0 for v, _ in runs) for lr, runs in per_lr.items()}
        best_lr = max(scored, key=lambda lr: (scored[lr], -lr))
        valid = [v if v is not None else 0.0 for v, _ in per_lr[best_lr]]
        test = [t if t is not None else 0.0 for _, t in per_lr[best_lr]]
        out[label] = {"best_lr": best_lr, "valid": valid, "test": test,
                      "valid_by_lr": {f"{lr:g}": scored[lr] for lr in per_lr}}
        print(f"  recheck {label}: lr {best_lr:g} valid {statistics.mean(valid):.2f} test "
              f"{statistics.mean(test):.2f}", file=sys.stderr, flush=True)
    return out


def mean_sd(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.2f}"


def section(result: dict[str, Any]) -> str:
    """Markdown for one search."""
    trials, a = result["trials"], result["args"]
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    controller = "uniform proposals: the no-learning ablation" if a["agent"] == "random" else "LSTM controller"
    lines = [(f"### {a['agent']} ({controller}), search seed {a['seed']}"
             f"{' (the seed the settings were chosen on)' if a['seed'] == 0 else ' (untuned seed)'}\n"),
             (f"{len(trials)} rules, {len(trials) - len(complete)} failed (diverged at every lr); search wall time "
             f"{result['search_wall_s'] / 60:.1f} min in this process ({result['rules_per_min']:.1f} rules/min, "
             f"1 worker, load average {result['load']}); schedule {a['schedule']} (first trial: steps), "
             f"grid {list(GRID)}.\n"),
             "Controller learning (mean reward of COMPLETE trials, fail rate, per block of trials):\n",
             "| trials | steps | mean reward | best reward | failed |", "|---|---:|---:|---:|---:|"]
    block = max(len(trials) // 4, 1)
    for i in range(0, len(trials), block):
        part = trials[i:i + block]
        rewards = [t["reward"] for t in part if t["state"] == "COMPLETE"]
        steps = sorted({t["steps"] for t in part})
        lines.append(f"| {i}-{i + len(part) - 1} | {'/'.join(map(str, steps))} | "
                     f"{statistics.mean(rewards) if rewards else float('nan'):.2f} | "
                     f"{max(rewards) if rewards else float('nan'):.2f} | "
                     f"{sum(t['state'] != 'COMPLETE' for t in part)} |")
    check = result["recheck"]
    sgdm = statistics.mean(check[SGDM]["valid"])
    lines += ["", (f"Re-trained on seeds {a['recheck_seeds']} with {a['steps']} steps, each at its best lr "
              "(by mean validation accuracy); accuracy in percent, mean ± sd over the seeds:\n"),
              "| optimizer | best lr | valid acc | test acc | beats SGD-momentum (valid) |", "|---|---:|---:|---:|---|"]
    for label, row in sorted(check.items(), key=lambda kv: -statistics.mean(kv[1]["valid"])):
        found = label.startswith("found: ")
        mark = ("yes" if statistics.mean(row["valid"]) > sgdm else "no") if found else ""
        lines.append(f"| {label} | {row['best_lr']:g} | {mean_sd(row['valid'])} | {mean_sd(row['test'])} | {mark} |")
    best = result["best_found"]
    lines.append(f"\nBest found rule (by re-trained validation accuracy): `{best}`.\n")
    return "\n".join(lines)


def write_report() -> Path:
    """results.md from every search JSON in the results folder."""
    parts = ["Child task: the optimizer evaluator's small ConvNet on MNIST-5k, batch 64. Accuracies in percent.\n"]
    for path in sorted(RESULTS.glob("*-seed*.json")):
        parts.append(section(json.loads(path.read_text())))
    out = RESULTS / "results.md"
    out.write_text("\n".join(parts))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agent", default="ppo", help="ppo, reinforce, or random (the no-learning ablation)")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--steps", type=int, default=200, help="child training steps after the schedule's growth")
    parser.add_argument("--schedule", default="0:100,100:200", help="FIRST_TRIAL:STEPS,... (the search's budget)")
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--recheck-seeds", type=int, nargs="+", default=[1000, 1001, 1002])
    parser.add_argument("--db-dir", default="/tmp/rlnas-nos-bench")
    parser.add_argument("--exact-random", action="store_true",
                        help="torch's own draws for drop / eps / noise (RuleOptimizer exact_random), as the "
                             "stored searches were made before the fast draws existed")
    parser.add_argument("--report", action="store_true", help="only rebuild results.md")
    parser.add_argument("--fresh", action="store_true",
                        help="re-train the check of the stored search (default: a finished search with the same "
                             "settings is only reported again); delete its JSON file and --db-dir to search again")
    args = parser.parse_args()
    out = RESULTS / f"{args.agent}-seed{args.seed}.json"
    same = ("seed", "agent", "trials", "batch_size", "steps", "schedule", "top", "recheck_seeds", "exact_random")
    stored = json.loads(out.read_text()) if out.exists() else None
    if stored is not None:
        stored["args"].setdefault("exact_random", True)  # searches stored before the fast draws used torch's
        if any(stored["args"].get(k) != getattr(args, k) for k in same):
            stored = None
    if args.report or (stored is not None and not args.fresh):
        print(write_report().read_text())
        return 0
    torch.set_num_threads(1)
    evaluator = OptimizerEvaluator(steps=args.steps, lr_grid=GRID, schedule=parse_schedule(args.schedule),
                                   exact_random=args.exact_random, threads=1)
    load = load_average()
    if stored is not None:  # --fresh: the stored search, its check trained again
        found = {"trials": stored["trials"], "agent_config": stored["agent_config"], "wall_s": 1.0,
                 "trials_this_run": 0}
    else:
        found = search(args, evaluator)
    rules = shortlist(found["trials"], args.top)
    print(f"recheck of {rules}", file=sys.stderr, flush=True)
    hyper = {"exact_random": True} if args.exact_random else {}
    optimizers = {f"found: `{r}`": rule_optimizer(as_rule(r), **hyper) for r in rules} | BASELINES
    check = recheck(evaluator, optimizers, args.recheck_seeds, args.steps)
    best = max((label for label in check if label.startswith("found: ")),
               key=lambda label: statistics.mean(check[label]["valid"]))
    search_wall, rate = found["wall_s"], found["trials_this_run"] / (found["wall_s"] / 60)
    if found["trials_this_run"] < len(found["trials"]) and out.exists():  # resumed: keep the first run's timing
        previous = json.loads(out.read_text())
        search_wall, rate, load = previous["search_wall_s"], previous["rules_per_min"], previous["load"]
    result = {
        "args": vars(args), "load": load, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "search_wall_s": search_wall, "rules_per_min": rate,
        "trials": found["trials"], "agent_config": found["agent_config"], "recheck": check,
        "best_found": best.removeprefix("found: ").strip("`"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(write_report().read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
