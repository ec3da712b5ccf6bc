"""``rlnas ls``: the studies in a database, one row each, with where each one stands."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import add_storage, fmt, literal, open_existing_store, write_stdout
from rlnas.cli._status import STATUSES, study_status, target_text
from rlnas.jsonsafe import strict_json_text
from rlnas.store.base import readable_studies


def add_parser(commands: Any) -> None:
    """Register ``ls``."""
    ls = commands.add_parser("ls", help="list the studies in a database with their status",
                             description="Status: " + ", ".join(STATUSES) + " (see docs/cli/studies.md).")
    ls.add_argument("--json", action="store_true", help="print one JSON object per study (a JSON list)")
    add_storage(ls)
    ls.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """One row per study."""
    store = open_existing_store(args.storage)
    records, damaged = readable_studies(store)
    rows = [(record, study_status(store, record)) for record in records]
    if args.json:
        write_stdout(strict_json_text([status for _, status in rows] +
                                      [{"name": exc.name, "status": "damaged", "error": str(exc)} for exc in damaged],
                                      indent=2) + "\n")
        return 0
    table = Table(title=literal(f"Studies in {getattr(store, 'url', args.storage)}"))
    longest = max([len(record.name) for record, _ in rows] + [len(exc.name) for exc in damaged], default=4)
    table.add_column("name", min_width=longest, no_wrap=True, overflow="fold")  # whole, to copy into a command
    for column in ("status", "space", "agent", "evaluator", "seed", "finished", "target", "failed",
                   "best reward", "created"):
        table.add_column(column)
    for record, s in rows:
        evaluator = " ".join(str(v) for k, v in record.evaluator.items() if k in ("name", "dataset"))
        status = s["status"] if s["driver"] is None else f"running ({s['driver']})"
        table.add_row(literal(record.name), literal(status), record.space_name, record.agent, literal(evaluator),
                      str(record.seed), str(s["finished"]), target_text(record.settings), str(s["failed"]),
                      fmt(s["best"]["reward"] if s["best"] else None), s["created"] or "-")
    for exc in damaged:
        table.add_row(literal(exc.name), "damaged", *["-"] * 9)
    console.print(table)
    for exc in damaged:
        print(f"rlnas: {exc}", file=sys.stderr)
    return 0
