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


def incumbent_at_distinct(run: Any, n: int) -> float:
    """Test accuracy of the best-by-reward cell once ``n`` distinct architectures were evaluated
    (NaN when the run never reached ``n``); repeats before that point count for nothing."""
    new = getattr(run, "new", None) or [True] * len(run.rewards)
    seen = 0
    for q, is_new in enumerate(new, 1):
        seen += bool(is_new)
        if seen == n:
            return incumbent_test(run, q)
    return math.nan


def incumbent_reward(run: Any, q: int) -> float:
    """Reward (validation accuracy) of the best-by-reward cell among the first ``q`` trials."""
    values = [r for r in run.rewards[:q] if r is not None and not math.isnan(r)]
    return max(values) if values else math.nan


def mean_std(values: Sequence[float]) -> list[float]:
    """``[mean, std, n]`` with the sample std (0 for one value); NaN values are left out."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return [math.nan, math.nan, 0]
    return [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)]


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
                found = [r.found_at for r in group if r.found_at is not None]
                table[dataset][agent] = {
                    "test_at": {str(q): mean_std([incumbent_test(r, q) for r in group])
                                for q in summary["checkpoints"]},
                    "test_at_distinct": {str(q): mean_std([incumbent_at_distinct(r, q) for r in group])
                                         for q in summary["checkpoints"]},
                    "valid_at": {str(q): mean_std([incumbent_reward(r, q) for r in group])
                                 for q in summary["checkpoints"]},
                    "found_share": len(found) / len(group),
                    "mean_found_at": float(np.mean(found)) if found else None,
                    "found_at": mean_std([float(f) for f in found]),
                    "median_found_at": float(np.median(found)) if found else None,
                    "repeat_share": float(np.mean([1 - np.mean(r.new) if r.new else 0.0 for r in group])),
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
    name = "NAS-Bench-Graph" if meta.get("benchmark") == "nbgraph" else "NAS-Bench-201"
    return plot_bands(panels, path, title=f"{name}: test regret of the best-by-validation cell "
                                          f"({meta['seeds']} seeds, mean and 95% CI)")


def _distinct_table(by_agent: Mapping[str, Any], agents: Sequence[str], points: Sequence[int]) -> list[str]:
    """Test accuracy after N distinct architectures (repeats cost nothing), and the reward after N queries."""
    lines = [("By distinct architectures (a repeated architecture costs nothing; *n/a*: not reached) and, in "
              "brackets, the validation accuracy (the search reward) of the best cell after N queries:"), "",
             "| agent | " + " | ".join(f"{p} distinct" for p in points) + " | repeats |",
             "|---" * (len(points) + 2) + "|"]
    for agent in agents:
        if agent in by_agent:
            row = by_agent[agent]
            cells = [f"{_cell(row['test_at_distinct'][str(p)])} ({row['valid_at'][str(p)][0]:.2f})" for p in points]
            lines.append(f"| {agent} | " + " | ".join(cells) + f" | {100 * row['repeat_share']:.1f}% |")
    return lines + [""]


def _found_table(by_agent: Mapping[str, Any], agents: Sequence[str]) -> list[str]:
    """Trials until the validation optimum was first evaluated: share, mean ± std, median."""
    lines = ["Trials until the validation optimum was evaluated (runs that found it):", "",
             "| agent | found | mean ± std | median |", "|---|---|---|---|"]
    for agent in agents:
        if agent in by_agent:
            row = by_agent[agent]
            median = "n/a" if row["median_found_at"] is None else f"{row['median_found_at']:.0f}"
            lines.append(f"| {agent} | {row['found_share'] * 100:.0f}% | {_cell(row['found_at'], 1)} | {median} |")
    return lines + [""]


COMPARED = {"test_at": "test accuracy of the best-by-validation cell",
            "valid_at": "validation accuracy of that cell (the search reward itself)"}
"""What :func:`_comparison_table` can compare: summary key -> its wording on the page."""


def _comparison_table(by_agent: Mapping[str, Any], agents: Sequence[str], points: Sequence[int],
                      reference: str = "l2nas", metric: str = "test_at") -> list[str]:
    """Difference of the mean ``metric`` (a :data:`COMPARED` key), ``reference`` minus each other agent,
    in standard errors."""
    if reference not in by_agent:
        return []
    lines = [(f"{reference} minus each agent by the {COMPARED[metric]} (by queries): difference of the means "
              "and, in brackets, that difference over its standard error (Welch):"), "",
             "| vs | " + " | ".join(f"{p} queries" for p in points) + " |", "|---" * (len(points) + 1) + "|"]
    ref = by_agent[reference]
    for agent in agents:
        if agent == reference or agent not in by_agent:
            continue
        cells = []
        for p in points:
            (m1, s1, n1), (m2, s2, n2) = ref[metric][str(p)], by_agent[agent][metric][str(p)]
            se = math.sqrt(s1 ** 2 / max(n1, 1) + s2 ** 2 / max(n2, 1))
            z = (m1 - m2) / se if se > 0 else math.copysign(math.inf, m1 - m2) if m1 != m2 else 0.0
            cells.append(f"{m1 - m2:+.3f} ({z:+.1f})")
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return lines + [""]


def _cell(stats: Sequence[float], digits: int = 2) -> str:
    mean, std = stats[0], stats[1]
    return "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def markdown(summary: Mapping[str, Any], meta: Mapping[str, Any], plot_name: str | None = None) -> str:
    """The results page (markdown)."""
    q = meta["queries"]
    graph = meta.get("benchmark", "nb201") == "nbgraph"
    lines = ["# NAS-Bench-Graph benchmark" if graph else "# NAS-Bench-201 benchmark", ""]
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
        reward = ("the benchmark's validation performance in percent (accuracy; proteins: its own metric)"
                  if graph else f"200-epoch validation accuracy ({noisy})")
        lines += [f"## {'Validation' if graph else '200-epoch validation'} reward, {q} queries", "",
                  (f"Reward: {reward}. Cells: mean ± std over runs of the "
                   f"test accuracy (%) of the best-by-validation cell after that many queries. "
                   f"*found*: share of runs that evaluated the global validation optimum within {q} queries "
                   f"(and the mean query at which they did)."), ""]
        points = summary["checkpoints"]
        for dataset, by_agent in summary["protocol_200"].items():
            opt = meta["optima"][f"200/{dataset}"]
            lines += [f"### {DATASET_NAMES.get(dataset, dataset)}", "",
                      (f"Best test accuracy in the table {opt['test_optimum']:.2f}; test accuracy of the "
                       f"validation optimum {opt['test_of_reward_optimum']:.2f}."), "",
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
            lines += _distinct_table(by_agent, meta["agents"], points)
            lines += _found_table(by_agent, meta["agents"])
            lines += _comparison_table(by_agent, meta["agents"], points)
            lines += _comparison_table(by_agent, meta["agents"], points, metric="valid_at")
        if plot_name:
            lines += [f"![test regret]({plot_name})", "",
                      ("Test regret = best test accuracy in the table − test accuracy of the best-by-validation "
                       "cell so far; bands are 95% normal-approximation confidence intervals of the mean."), ""]

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
