"""``rlnas compare``: studies (or groups of seeds, by glob) side by side; with ``-o`` their regret curves."""
from __future__ import annotations

import argparse
import math
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import add_storage, literal, open_existing_store, write_stdout
from rlnas.jsonsafe import strict_json_text


def add_parser(commands: Any) -> None:
    """Register ``compare``."""
    p = commands.add_parser("compare", help="compare studies side by side (globs aggregate seeds)")
    p.add_argument("names", nargs="+", metavar="NAME", help="study name or shell glob ('c10-l2nas-*')")
    p.add_argument("--metric", default=None, help="metric reported for the best trial (default test_acc; '-' where "
                   "a study has none)")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="also draw the groups' regret of --metric against queries (FILE.png or FILE.svg)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_storage(p)
    p.set_defaults(run=run)


def _cell(pair: tuple[float, float], digits: int = 2) -> str:
    mean, std = pair
    if math.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" if std == 0 else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _json_pair(pair: tuple[float, float]) -> dict[str, float | None]:
    return {"mean": None if math.isnan(pair[0]) else pair[0], "std": None if math.isnan(pair[1]) else pair[1]}


def run(args: argparse.Namespace, console: Console) -> int:
    """Print one row per NAME; draw the regret curves with ``-o``."""
    from rlnas.reports.compare import check_metric_stored, compare_groups
    from rlnas.reports.snapshot import take_groups

    if args.output is not None and args.output.rsplit(".", 1)[-1].lower() not in ("png", "svg"):
        from rlnas.errors import ConfigError

        raise ConfigError(f"cannot write {args.output}: the file name must end in .png or .svg")
    groups = take_groups(open_existing_store(args.storage), args.names)
    if args.metric is None:
        args.metric = "test_acc"  # the benchmarks' number; a study without it (weight sharing) shows '-'
    else:
        check_metric_stored(groups, args.metric)  # a typo would show '-' everywhere
    rows = compare_groups(groups, args.metric)
    path = None
    if args.output is not None:  # written before anything is printed: a regret that cannot be drawn or written is
        from rlnas.cli.plot import known_optimum  # the only output
        from rlnas.reports.compare import regret_bands
        from rlnas.reports.render import regret_figure, save_figure

        optimum, source = known_optimum(groups, args.metric)
        path = save_figure(regret_figure(regret_bands(groups, args.metric, optimum, optimum_source=source)),
                           args.output)
    if args.json:
        write_stdout(strict_json_text([{
            "name": r.label, "studies": list(r.studies), "studies_without_completed_trial": r.without_result,
            "best_reward": _json_pair(r.best_reward), f"best_{args.metric}": _json_pair(r.best_test),
            "queries_to_best": _json_pair(r.queries_to_best), "distinct_architectures": _json_pair(r.distinct),
            "finished": _json_pair(r.finished), "failed": _json_pair(r.failed)} for r in rows], indent=2) + "\n")
    else:
        table = Table(title="Comparison (mean ± std over the studies of each row)")
        for column in ("name", "studies", "best reward", f"{args.metric} of best", "queries to best",
                       "distinct architectures", "finished", "failed"):
            table.add_column(column)
        for r in rows:
            studies = str(len(r.studies)) + (f" ({r.without_result} without a completed trial)"
                                              if r.without_result else "")
            table.add_row(literal(r.label), studies, _cell(r.best_reward, 3), _cell(r.best_test),
                          _cell(r.queries_to_best, 1), _cell(r.distinct, 1), _cell(r.finished, 1), _cell(r.failed, 1))
        console.print(table)
    if path is not None and not args.json:
        console.print(literal(f"wrote the regret curves to {path}"))
    return 0
