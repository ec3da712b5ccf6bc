"""``rlnas query``: one NAS-Bench-201 cell looked up in the shipped table."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from rlnas.cli._common import field_table, fmt, literal


def add_parser(commands: Any) -> None:
    """Register ``query``."""
    query = commands.add_parser("query", help="look one NB201 architecture up in the shipped table")
    query.add_argument("arch", help="official arch string, e.g. '|nor_conv_3x3~0|+|...|'")
    query.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or imagenet16-120 (default cifar10)")
    query.add_argument("--fidelity", type=int, default=200,
                       help="training epochs behind the reward: 200 (default) or 12 (the table's short run)")
    query.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """One cell of the shipped NB201 table."""
    from rlnas.evaluators import create_evaluator
    from rlnas.spaces import create_space

    candidate = create_space("nb201").from_key(args.arch)
    evaluator = create_evaluator("nb201", dataset=args.dataset, fidelity=args.fidelity)
    measurement = evaluator.evaluate(candidate)
    table = field_table(f"NAS-Bench-201 {args.dataset}, {args.fidelity}-epoch reward")
    table.add_row("architecture", literal(args.arch))
    table.add_row("index", str(measurement.info.get("index")))
    for metric, value in measurement.metrics.items():
        table.add_row(metric, fmt(value))
    table.add_row("cost_seconds (simulated)", fmt(measurement.cost_seconds, 1))
    console.print(table)
    return 0
