"""``rlnas ls``: the studies in a database, one row each."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import add_storage, fmt, literal, open_existing_store
from rlnas.trial import TrialState


def add_parser(commands: Any) -> None:
    """Register ``ls``."""
    ls = commands.add_parser("ls", help="list the studies in a database")
    add_storage(ls)
    ls.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """One row per study."""
    from rlnas.study import best_of

    store = open_existing_store(args.storage)
    table = Table(title=literal(f"Studies in {getattr(store, 'url', args.storage)}"))
    for column in ("name", "space", "agent", "evaluator", "seed", "complete", "failed", "best reward", "driver",
                   "created"):
        table.add_column(column)
    for record in store.list_studies():
        trials = store.trials(record.id)
        complete = sum(t.state is TrialState.COMPLETE for t in trials)
        failed = sum(t.state is TrialState.FAIL for t in trials)
        best = best_of(trials)
        lease = store.get_lease(record.id)
        evaluator = " ".join(str(v) for k, v in record.evaluator.items() if k in ("name", "dataset"))
        table.add_row(literal(record.name), record.space_name, record.agent, literal(evaluator), str(record.seed),
                      str(complete), str(failed), fmt(best.reward if best else None),
                      "-" if lease is None else f"pid {lease.pid}@{lease.host}",
                      record.created_at.strftime("%Y-%m-%d %H:%M") if record.created_at else "-")
    console.print(table)
    return 0
