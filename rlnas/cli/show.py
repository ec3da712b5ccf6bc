"""``rlnas show``: a study's definition, who drives it, its best and latest trials."""
from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import add_storage, field_table, fmt, literal, open_existing_store
from rlnas.errors import ConfigError


def add_parser(commands: Any) -> None:
    """Register ``show``."""
    show = commands.add_parser("show", help="describe a study and its latest trials")
    show.add_argument("name")
    show.add_argument("--last", type=int, default=10, help="how many of the latest trials to list")
    add_storage(show)
    show.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """The study's definition, its best trial and its latest trials."""
    from rlnas.study import best_of

    if args.last < 0:
        raise ConfigError(f"--last must be >= 0, got {args.last}")
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    trials = store.trials(record.id)
    about = field_table(f"Study {record.name!r}")
    lease = store.get_lease(record.id)
    rows = [("space", f"{record.space_name} (fingerprint {record.fingerprint})"), ("agent", record.agent),
            ("agent config", json.dumps(record.agent_config)), ("evaluator", json.dumps(record.evaluator)),
            ("reward", json.dumps(record.reward)), ("seed", str(record.seed)),
            ("reuse repeats", str(record.reuse_repeats)), ("settings", json.dumps(record.settings)),
            ("rlnas version", record.version), ("trials stored", str(len(trials))),
            ("driven by", "nobody" if lease is None else lease.describe())]
    for field, value in rows:
        about.add_row(field, literal(value))
    best = best_of(trials)
    shown_best = "-" if best is None else f"{best.key}  reward {fmt(best.reward)} (trial {best.number})"
    about.add_row("best", literal(shown_best))
    console.print(about)
    if args.last:
        listing = Table(title=f"Last {min(args.last, len(trials))} trials")
        for column in ("number", "state", "architecture", "reward", "test_acc", "cost s", "note"):
            listing.add_column(column)
        for t in trials[-args.last:]:
            note = t.error or (f"repeat of trial {t.repeat_of}" if t.repeat_of is not None else "")
            listing.add_row(str(t.number), t.state.value, literal(t.key), fmt(t.reward),
                            fmt(t.metrics.get("test_acc")), fmt(t.cost_seconds, 1), literal(note))
        console.print(listing)
    return 0
