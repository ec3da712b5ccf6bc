"""``rlnas best``: the best architecture of a study and its metrics."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_metric_rows, add_storage, field_table, literal, open_existing_store
from rlnas.errors import RlnasError
from rlnas.jsonsafe import strict_json_text
from rlnas.trial import TrialState


def add_parser(commands: Any) -> None:
    """Register ``best``."""
    best = commands.add_parser("best", help="the best architecture of a study")
    best.add_argument("name")
    best.add_argument("--json", action="store_true", help="print the best trial as JSON")
    add_storage(best)
    best.set_defaults(run=run)


def best_trial_of(store: Any, record: Any) -> Any:
    """The study's best COMPLETE trial; an error when there is none yet."""
    from rlnas.study import best_of

    best = best_of(store.trials(record.id, [TrialState.COMPLETE]))
    if best is None:
        raise RlnasError(f"study {record.name!r} has no completed trial yet")
    return best


def run(args: argparse.Namespace, console: Console) -> int:
    """The best architecture and its metrics."""
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    best = best_trial_of(store, record)
    if args.json:
        from rlnas.cli._status import trial_json

        print(strict_json_text({"study": record.name, "reward_spec": record.reward, **trial_json(best)}, indent=2))
        return 0
    table = field_table(f"Best architecture of study {record.name!r}")
    table.add_row("architecture", literal(best.key))
    add_metric_rows(table, best, record.reward)
    table.add_row("trial", str(best.number))
    console.print(table)
    return 0
