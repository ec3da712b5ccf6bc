"""``rlnas plot``: one picture of one study (or of several, for history and regret) as PNG or SVG."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_storage, literal, open_existing_store
from rlnas.errors import ConfigError

KINDS = {
    "history": "reward per trial and best so far (--x trials|time|wall); several studies overlay",
    "regret": "regret of --metric against queries, mean and 95 % band per NAME (globs aggregate seeds)",
    "diagnostics": "the agent's per-update diagnostics (entropy, losses, KL, clip fraction, ...)",
    "heatmap": "the controller's decision probabilities over the search (replayed from the store)",
    "choices": "how often each choice was proposed, per window of trials (any agent)",
    "pareto": "--metric against a cost (--cost latency_ms|flops_m|params_m) with the Pareto front",
}


def add_parser(commands: Any) -> None:
    """Register ``plot``."""
    kinds = "; ".join(f"{k}: {v}" for k, v in KINDS.items())
    p = commands.add_parser("plot", help="draw a study's history, regret, diagnostics, policy or Pareto front",
                            description=f"Kinds: {kinds}. Needs matplotlib: pip install 'rlnas[plot]'.")
    p.add_argument("names", nargs="+", metavar="NAME", help="study name or shell glob ('c10-ppo-*')")
    p.add_argument("--kind", required=True, choices=tuple(KINDS), help="what to draw (see above)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.png or FILE.svg (folders are created)")
    p.add_argument("--x", default=None, choices=("trials", "time", "wall"),
                   help="history: against trials (default), evaluation seconds (simulated for tables) or wall-clock "
                        "seconds")
    p.add_argument("--metric", default=None, help="regret / pareto: the metric (default test_acc)")
    p.add_argument("--cost", default=None, help="pareto: the cost metric (default: latency_ms, flops_m or params_m)")
    p.add_argument("--optimum", type=float, default=None,
                   help="regret: the best value of --metric (default: the benchmark table's, else the best found)")
    p.add_argument("--window", type=int, default=None, help="choices: trials per column (default: a twentieth)")
    add_storage(p)
    p.set_defaults(run=run)


OPTION_KINDS = {"x": ("history",), "metric": ("regret", "pareto"), "cost": ("pareto",), "optimum": ("regret",),
                "window": ("choices",)}
"""The kinds each option draws with (given with another kind, an option would be ignored)."""


def check_options_apply(args: argparse.Namespace) -> None:
    """:class:`ConfigError` for an option given with a kind that does not use it; then the defaults."""
    for option, kinds in OPTION_KINDS.items():
        if getattr(args, option) is not None and args.kind not in kinds:
            raise ConfigError(f"--{option} applies to --kind {' / '.join(kinds)}, not {args.kind}")
    args.x = "trials" if args.x is None else args.x
    args.metric = "test_acc" if args.metric is None else args.metric


def one_study(groups: dict[str, list[Any]], kind: str) -> Any:
    """The single snapshot a per-study kind needs."""
    snapshots = [s for group in groups.values() for s in group]
    if len(snapshots) != 1:
        raise ConfigError(f"--kind {kind} draws one study; {len(snapshots)} match: "
                          f"{', '.join(s.name for s in snapshots[:5])}{' ...' if len(snapshots) > 5 else ''}")
    return snapshots[0]


def known_optimum(groups: dict[str, list[Any]], metric: str) -> tuple[float | None, str]:
    """The benchmark's best ``metric`` and where it comes from, when every study searched one table on
    one data set (else ``(None, "")``)."""
    specs = {tuple(sorted((k, str(v)) for k, v in s.record.evaluator.items())) for g in groups.values() for s in g}
    if len(specs) != 1:
        return None, ""
    spec = dict(next(iter(specs)))
    if spec.get("name") != "nb201" or metric not in ("test_acc", "valid_acc"):
        return None, ""
    from rlnas.evaluators import create_evaluator

    evaluator = create_evaluator("nb201", dataset=spec["dataset"], fidelity=int(spec.get("fidelity", 200)))
    return evaluator.optimum(metric)[1], f"best of the NAS-Bench-201 {spec['dataset']} table"


def make_figure(args: argparse.Namespace, groups: dict[str, list[Any]]) -> Any:
    """The figure of ``--kind`` for the matched studies."""
    from rlnas.reports import render
    from rlnas.reports.compare import regret_bands
    from rlnas.reports.history import accuracy_vs_cost, diagnostic_series, search_history
    from rlnas.reports.policy import choice_heatmap, policy_heatmap
    from rlnas.study import space_of
    from rlnas.study._factories import registered_space

    if args.kind == "history":
        histories = {s.name: search_history(s.evaluated, args.x) for g in groups.values() for s in g}
        return render.history_figure(histories)
    if args.kind == "regret":
        optimum, source = (args.optimum, "given") if args.optimum is not None else known_optimum(groups, args.metric)
        return render.regret_figure(regret_bands(groups, args.metric, optimum, optimum_source=source))
    snapshot = one_study(groups, args.kind)
    if args.kind == "diagnostics":
        return render.diagnostics_figure(diagnostic_series(snapshot.diagnostics), f"diagnostics of {snapshot.name}")
    if args.kind == "heatmap":
        return render.heatmap_figure(policy_heatmap(snapshot, space_of(snapshot.record)))
    if args.kind == "choices":
        return render.heatmap_figure(choice_heatmap(snapshot, space_of(snapshot.record), args.window))
    return render.pareto_figure(accuracy_vs_cost(snapshot.evaluated, args.metric, args.cost,
                                                 space=registered_space(snapshot.record)))


def run(args: argparse.Namespace, console: Console) -> int:
    """Read the studies, compute the plot data, draw and write the file."""
    from rlnas.reports.render import FORMATS, save_figure
    from rlnas.reports.snapshot import take_groups

    if args.output.rsplit(".", 1)[-1].lower() not in FORMATS:
        raise ConfigError(f"cannot write {args.output}: the file name must end in .png or .svg")
    check_options_apply(args)
    groups = take_groups(open_existing_store(args.storage), args.names)
    path = save_figure(make_figure(args, groups), args.output)
    console.print(literal(f"wrote {args.kind} of {', '.join(args.names)} to {path}"))
    return 0
