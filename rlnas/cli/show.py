"""``rlnas show``: a study's definition, who drives it, its best and latest trials; ``--watch`` follows it."""
from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import add_storage, field_table, fmt, literal, open_existing_store, write_stdout
from rlnas.cli._status import live_driver
from rlnas.errors import ConfigError
from rlnas.jsonsafe import strict_json_text
from rlnas.trial import TrialState

ABANDONED = "its driver is gone: resume evaluates this slot again"
"""The note of a RUNNING trial of a study that nobody drives (killed, or the machine went down)."""


def add_parser(commands: Any) -> None:
    """Register ``show``."""
    show = commands.add_parser("show", help="describe a study and its latest trials (--watch: follow it live)")
    show.add_argument("name")
    show.add_argument("--last", type=int, default=10, help="how many of the latest trials to list (default 10)")
    show.add_argument("--json", action="store_true", help="print the definition, status and latest trials as JSON")
    show.add_argument("--watch", action="store_true",
                      help="follow the study from another terminal: print its progress and driver every "
                           "--interval seconds until nobody drives it any more (Ctrl-C stops watching only)")
    show.add_argument("--interval", type=float, default=None, help="--watch: seconds between looks (default 2)")
    add_storage(show)
    show.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """The study's definition, its best trial and its latest trials (or a live view)."""
    if args.last < 0:
        raise ConfigError(f"--last must be >= 0, got {args.last}")
    if args.interval is not None and not args.watch:
        raise ConfigError("--interval applies to --watch")
    if args.watch and args.json:
        raise ConfigError("--watch prints a live view, not JSON: give one of --watch and --json")
    args.interval = 2.0 if args.interval is None else args.interval
    if not 0 < args.interval <= 86400:
        raise ConfigError(f"--interval must be a number of seconds in (0, 86400], got {args.interval}")
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    if args.watch:
        return watch(store, record, args.interval, console)
    driven = live_driver(store, record.id) is not None  # before the trials: a RUNNING one read after is live
    trials = store.trials(record.id)
    if args.json:
        from rlnas.cli._status import record_json, study_status, trial_json

        last = [trial_json(t) for t in trials[-args.last:]] if args.last else []
        write_stdout(strict_json_text({"definition": record_json(record),
                                       "status": study_status(store, record, trials), "last_trials": last},
                                      indent=2) + "\n")
        return 0
    print_definition(store, record, trials, console)
    if args.last:
        listing = Table(title=f"Last {min(args.last, len(trials))} trials")
        for column in ("number", "state", "architecture", "reward", "test_acc", "cost s", "note"):
            listing.add_column(column)
        for t in trials[-args.last:]:
            note = t.error or (f"repeat of trial {t.repeat_of}" if t.repeat_of is not None else "")
            if t.state is TrialState.RUNNING and not driven:
                note = ABANDONED
            listing.add_row(str(t.number), t.state.value, literal(t.key), fmt(t.reward),
                            fmt(t.metrics.get("test_acc")), fmt(t.cost_seconds, 1), literal(note))
        console.print(listing)
    return 0


def print_definition(store: Any, record: Any, trials: list[Any], console: Console) -> None:
    """The table of the study's definition, status, driver and best trial."""
    from rlnas.cli._status import study_status, target_text

    status = study_status(store, record, trials)
    about = field_table(f"Study {record.name!r}")
    rows = [("space", f"{record.space_name} (fingerprint {record.fingerprint})"), ("agent", record.agent),
            ("agent config", json.dumps(record.agent_config)), ("evaluator", json.dumps(record.evaluator)),
            ("reward", json.dumps(record.reward)), ("seed", str(record.seed)),
            ("reuse repeats", str(record.reuse_repeats)), ("settings", json.dumps(record.settings)),
            ("rlnas version", record.version), ("trials stored", str(len(trials))),
            ("status", status["status"]), ("target", target_text(record.settings)),
            ("driven by", status["driver"] or "nobody")]
    for field, value in rows:
        about.add_row(field, literal(value))
    best = status["best"]
    about.add_row("best", "-" if best is None else
                  literal(f"{best['key']}  reward {fmt(best['reward'])} (trial {best['trial']})"))
    console.print(about)


def watch_line(status: dict[str, Any]) -> str:
    """One line of the live view: status and driver, progress against the target, best so far."""
    target = status["target"]
    progress = f"{status['finished']}" + (f"/{target['n_trials']}" if target["n_trials"] is not None else "")
    parts = [f"{status['status']}" + (f" by {status['driver']}" if status["driver"] else ""),
             f"trials {progress}", f"running {status['running']}", f"failed {status['failed']}",
             f"distinct {status['distinct_architectures']}"]
    if target["budget_seconds"] is not None:
        parts.append(f"spent {status['spent_seconds']:.0f}/{target['budget_seconds']:g} s")
    best = status["best"]
    parts.append("best -" if best is None else f"best {fmt(best['reward'])} (trial {best['trial']}) {best['key']}")
    return "  ".join(parts)


def watch(store: Any, record: Any, interval: float, console: Console, max_looks: int | None = None) -> int:
    """Print :func:`watch_line` whenever it changes, until the study has no live driver."""
    from rlnas.cli._status import study_status

    last, looks = None, 0
    try:
        while True:
            status = study_status(store, record)
            line = watch_line(status)
            if line != last:
                console.print(literal(f"{time.strftime('%H:%M:%S')}  {line}"), soft_wrap=True)
                last = line
            looks += 1
            if status["driver"] is None or (max_looks is not None and looks >= max_looks):
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    return 0
