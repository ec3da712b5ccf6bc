"""Tables, summary and regret plot of the NAS-Bench-201 benchmark (see ``nb201.py``).

Numbers are computed from the raw runs only: the test accuracy of the incumbent (the
best-by-reward cell so far, earliest on ties) after ``q`` queries, averaged over runs.
``std`` is the sample standard deviation over runs (``ddof=1``; 0 for a single run).
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlnas.reports.regret import incumbent_values, mean_band, regret_curve
from rlnas.reports.render import plot_bands

CHECKPOINTS: tuple[int, ...] = (50, 100, 200, 300, 500)
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16-120": "ImageNet16-120"}


def checkpoints(queries: int) -> list[int]:
    """The standard checkpoints up to ``queries``, always ending with ``queries`` itself."""
    points = [q for q in CHECKPOINTS if q < queries]
    return points + [queries]


def incumbent_test(run: Any, q: int | None = None) -> float:
    """Test accuracy of the best-by-reward cell among the first ``q`` trials (all when ``None``)."""
    values = incumbent_values(run.rewards, run.test_acc)
    if len(values) == 0:
        return math.nan
    q = len(values) if q is None else min(q, len(values))
    return float(values[q - 1])


def mean_std(values: Sequence[float]) -> list[float]:
    """``[mean, std, n]`` with the sample std (0 for one value); NaN values are left out."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return [math.nan, math.nan, 0]
    return [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, int(len(v))]


def _group(runs: Sequence[Any], protocol: int) -> dict[str, dict[str, list[Any]]]:
    groups: dict[str, dict[str, list[Any]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        if run.protocol == protocol:
            groups[run.dataset][run.agent].append(run)
    return groups


def summarize(runs: Sequence[Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able summary: per protocol, data set and agent (see the module docstring)."""
    summary: dict[str, Any] = {"checkpoints": checkpoints(meta["queries"])}
    if 200 in meta["protocols"]:
        table: dict[str, Any] = {}
        for dataset, by_agent in _group(runs, 200).items():
            table[dataset] = {}
            for agent, group in by_agent.items():
                found = [r.found_at for r in group if r.found_at is not None and r.found_at <= meta["queries"]]
                table[dataset][agent] = {
                    "test_at": {str(q): mean_std([incumbent_test(r, q) for r in group])
                                for q in summary["checkpoints"]},
                    "found_share": len(found) / len(group),
                    "mean_found_at": float(np.mean(found)) if found else None,
                    "runs": len(group),
                }
        summary["protocol_200"] = table
    if 12 in meta["protocols"]:
        table = {}
        for dataset, by_agent in _group(runs, 12).items():
            table[dataset] = {}
            for agent, group in by_agent.items():
                table[dataset][agent] = {
                    "test": mean_std([incumbent_test(r) for r in group]),
                    "queries": mean_std([float(len(r.rewards)) for r in group]),
                    "found_share": sum(r.found_at is not None for r in group) / len(group),
                    "runs": len(group),
                }
        summary["protocol_12"] = table
    timing: dict[str, dict[str, float]] = {}
    for agent in {r.agent for r in runs}:
        walls = [r.wall_seconds for r in runs if r.agent == agent]
        timing[agent] = {"run_seconds_total": float(sum(walls)), "run_seconds_mean": float(np.mean(walls))}
    summary["timing"] = timing
    return summary


def regret_plot(runs: Sequence[Any], meta: Mapping[str, Any], path: Path) -> Path:
    """One panel per data set: mean test regret vs queries with 95% bands (protocol 200 runs)."""
    panels = {}
    for dataset, by_agent in _group(runs, 200).items():
        best = meta["optima"][f"200/{dataset}"]["test_optimum"]
        panels[DATASET_NAMES.get(dataset, dataset)] = [
            mean_band(agent, [regret_curve(r.rewards, r.test_acc, best) for r in by_agent[agent]])
            for agent in meta["agents"] if agent in by_agent
        ]
    return plot_bands(panels, path, title=f"NAS-Bench-201: test regret of the best-by-validation cell "
                                          f"({meta['seeds']} seeds, mean and 95% CI)")


def _cell(stats: Sequence[float], digits: int = 2) -> str:
    mean, std = stats[0], stats[1]
    return "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(summary: Mapping[str, Any], meta: Mapping[str, Any], plot_name: str | None = None) -> str:
    """The results page (markdown)."""
    q = meta["queries"]
    lines = ["# NAS-Bench-201 benchmark", ""]
    lines.append(f"{meta['seeds']} seeds per agent and data set; agents {', '.join(meta['agents'])}; "
                 f"{meta['workers']} worker process(es) on {meta['cpu_count']} CPU(s); total run wall time "
                 f"{meta['wall_seconds']:.0f} s (load average {meta['load_before'][0]:.2f} before, "
                 f"{meta['load_after'][0]:.2f} after).")
    for name, reason in meta.get("skipped", {}).items():
        lines.append(f"Skipped `{name}` (module does not import: {reason}).")
    if meta.get("agent_configs"):
        lines.append(f"Agent config overrides: `{meta['agent_configs']}`.")
    lines.append("")

    if "protocol_200" in summary:
        noisy = "one random training seed per query" if meta.get("noisy") else "seed mean"
        lines += [f"## 200-epoch validation reward, {q} queries", "",
                  f"Reward: 200-epoch validation accuracy ({noisy}). Cells: mean ± std over runs of the "
                  f"test accuracy (%) of the best-by-validation cell after that many queries. "
                  f"*found*: share of runs that evaluated the global validation optimum within {q} queries "
                  f"(and the mean query at which they did).", ""]
        points = summary["checkpoints"]
        for dataset, by_agent in summary["protocol_200"].items():
            opt = meta["optima"][f"200/{dataset}"]
            lines += [f"### {DATASET_NAMES.get(dataset, dataset)}", "",
                      f"Best test accuracy in the table {opt['test_optimum']:.2f}; test accuracy of the "
                      f"validation optimum {opt['test_of_reward_optimum']:.2f}.", "",
                      "| agent | " + " | ".join(f"{p} queries" for p in points) + " | found |",
                      "|---" * (len(points) + 2) + "|"]
            for agent in meta["agents"]:
                if agent not in by_agent:
                    continue
                row = by_agent[agent]
                found = f"{100 * row['found_share']:.0f}%"
                if row["mean_found_at"] is not None:
                    found += f" (at {row['mean_found_at']:.0f})"
                lines.append(f"| {agent} | " + " | ".join(_cell(row["test_at"][str(p)]) for p in points)
                             + f" | {found} |")
            lines.append("")
        if plot_name:
            lines += [f"![test regret]({plot_name})", "",
                      "Test regret = best test accuracy in the table − test accuracy of the best-by-validation "
                      "cell so far; bands are 95% normal-approximation confidence intervals of the mean.", ""]

    if "protocol_12" in summary:
        budgets = meta["budgets"]["12"]
        datasets = [d for d in meta["datasets"] if d in summary["protocol_12"]]
        lines += ["## NATS-Bench protocol: 12-epoch reward, simulated time budget", "",
                  "Reward: 12-epoch validation accuracy (seed mean); each query costs 12/200 of the cell's "
                  "simulated 200-epoch training time; a run stops once the budget ("
                  + ", ".join(f"{DATASET_NAMES.get(d, d)} {budgets[d]:,.0f} s" for d in datasets)
                  + ") is spent, the query that crosses it included. Cells: 200-epoch test accuracy (%) of the "
                  "best-by-reward cell at the end, and the mean number of queries used.", "",
                  "| agent | " + " | ".join(f"{DATASET_NAMES.get(d, d)} test | queries" for d in datasets) + " |",
                  "|---" * (2 * len(datasets) + 1) + "|"]
        for agent in meta["agents"]:
            cells = []
            for d in datasets:
                row = summary["protocol_12"][d].get(agent)
                cells += ["n/a", "n/a"] if row is None else [_cell(row["test"]), f"{row['queries'][0]:.0f}"]
            lines.append(f"| {agent} | " + " | ".join(cells) + " |")
        lines.append("")

    lines += ["## Time per agent", "", "| agent | run seconds (sum over runs) | mean per run |", "|---|---|---|"]
    for agent in meta["agents"]:
        t = summary["timing"].get(agent)
        if t:
            lines.append(f"| {agent} | {t['run_seconds_total']:.1f} | {t['run_seconds_mean']:.3f} |")
    lines.append("")
    return "\n".join(lines)
