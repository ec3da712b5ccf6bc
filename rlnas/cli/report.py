"""``rlnas report``: one self-contained HTML page of a study (opens offline, sends no request)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_storage, literal, open_existing_store
from rlnas.errors import ConfigError


def add_parser(commands: Any) -> None:
    """Register ``report``."""
    p = commands.add_parser("report", help="write a study's HTML report (definition, best candidates, plots, cell)")
    p.add_argument("name")
    p.add_argument("-o", "--output", required=True, metavar="FILE.html", help="the page to write (folders are created)")
    p.add_argument("--top", type=int, default=20, help="best distinct candidates in the table (default 20)")
    add_storage(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """Read the study, build the page, write it."""
    from rlnas.cli._common import write_output
    from rlnas.cli._status import study_status, target_text
    from rlnas.reports.html import build_report
    from rlnas.reports.snapshot import take_snapshot
    from rlnas.study import space_of

    if not args.output.lower().endswith((".html", ".htm")):
        raise ConfigError(f"cannot write {args.output}: the report is HTML, name it FILE.html")
    if args.top < 1:
        raise ConfigError(f"--top must be >= 1, got {args.top}")
    store = open_existing_store(args.storage)
    snapshot = take_snapshot(store, args.name)
    state = study_status(store, snapshot.record, list(snapshot.trials))
    status = f"{state['status']} (target {target_text(snapshot.record.settings)})"  # a page of a search still going
    page = build_report(snapshot, space_of(snapshot.record), top=args.top, status=status)
    write_output(args.output, page.encode("utf-8"))
    console.print(literal(f"wrote the report of {args.name!r} to {Path(args.output)}"))
    return 0
