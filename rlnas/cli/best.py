"""``rlnas best``: the best architecture of a study and its metrics."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_metric_rows, add_storage, field_table, literal, open_existing_store, write_stdout
from rlnas.errors import RlnasError
from rlnas.jsonsafe import strict_json_text
from rlnas.trial import TrialState


def add_parser(commands: Any) -> None:
    """Register ``best``."""
    best = commands.add_parser("best", help="the best architecture of a study (a weight-sharing search: its answer)")
    best.add_argument("name")
    best.add_argument("--json", action="store_true", help="print the best trial as JSON")
    add_storage(best)
    best.set_defaults(run=run)


def found_trial_of(store: Any, record: Any) -> Any:
    """:func:`~rlnas.study.found_trial` of a stored study; an error when none of its trials completed yet."""
    from rlnas.study import found_trial

    found = found_trial(store.trials(record.id, [TrialState.COMPLETE]), record.agent)
    if found is None:
        raise RlnasError(f"study {record.name!r} has no completed trial yet")
    return found


def found_title(name: str, agent: str) -> str:
    """The title of the table that shows what study ``name`` found."""
    from rlnas.agents import shares_weights

    if shares_weights(agent):
        return f"Answer of weight-sharing study {name!r} (its last recorded trial)"
    return f"Best architecture of study {name!r}"


def run(args: argparse.Namespace, console: Console) -> int:
    """The best architecture (a weight-sharing search's answer) and its metrics."""
    from rlnas.agents import shares_weights
    from rlnas.study import WEIGHT_SHARING_ANSWER

    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    best = found_trial_of(store, record)
    if args.json:
        from rlnas.cli._status import trial_json

        write_stdout(strict_json_text({"study": record.name, "reward_spec": record.reward, **trial_json(best)},
                                      indent=2) + "\n")
        return 0
    table = field_table(found_title(record.name, record.agent))
    table.add_row("architecture", literal(best.key))
    add_metric_rows(table, best, record.reward)
    table.add_row("trial", str(best.number))
    if shares_weights(record.agent):
        table.add_row("note", literal(WEIGHT_SHARING_ANSWER))
    console.print(table)
    return 0
