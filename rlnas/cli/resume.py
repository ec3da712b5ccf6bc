"""``rlnas resume``: continue a stopped or crashed search (run options may change)."""
from __future__ import annotations

import argparse
import warnings
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_run_options, add_storage, check_limits, run_options
from rlnas.cli.summary import run_and_report
from rlnas.errors import StorageError


def add_parser(commands: Any) -> None:
    """Register ``resume``."""
    p = commands.add_parser("resume", help="continue a stopped or crashed search")
    p.add_argument("name")
    p.add_argument("--trials", type=int, default=None, help="new total number of trials")
    p.add_argument("--budget-seconds", type=float, default=None, help="new total evaluation-time budget")
    add_run_options(p)
    add_storage(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """Reopen the study with its stored definition and go on towards its (or the new) limits."""
    from rlnas.agents import shares_weights
    from rlnas.cli.search import within_epochs
    from rlnas.study import load_study

    check_limits(args.trials, args.budget_seconds)
    ran_with = _threads_of_last_run(args.name, args.storage)
    run_options(args)  # a bad value is refused before anything is said about it
    if args.threads is None:
        args.threads = ran_with  # torch's results depend on the thread count: the same, the same run
    elif ran_with is not None and args.threads != ran_with:
        warnings.warn(f"--threads {args.threads}: the study ran with {ran_with}; on the CPU the trials from here on "
                      "may differ from those of an uninterrupted run", stacklevel=1)
    options = run_options(args)
    study = load_study(args.name, args.storage, threads=args.threads, device=args.device)
    if getattr(study.store, "read_only", False):  # one line before the run, as search gives (not a failed run)
        raise StorageError(f"cannot resume {args.name!r}: {study.store.url} is in a folder this process cannot "
                           "write to (it can be read, not driven)")
    trials = args.trials
    if shares_weights(study.record.agent) and study.evaluator is not None:
        trials = within_epochs(trials, study.evaluator)
    return run_and_report(study, trials, args.budget_seconds, options, console)


def _threads_of_last_run(name: str, storage: str) -> int | None:
    """The ``--threads`` of the study's last run (``None``: torch's choice, or not known: the study is read
    again, with its errors, by ``load_study``)."""
    from rlnas.errors import RlnasError
    from rlnas.store import open_store

    try:
        store = open_store(storage, create=False)
        try:
            threads = store.get_study(name).settings.get("threads")
        finally:
            store.close()
    except RlnasError:
        return None
    return threads if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0 else None
