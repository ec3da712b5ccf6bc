"""Run a study for ``search`` / ``resume`` and print what it found."""
from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from rlnas.cli._common import EXIT_INTERRUPTED, CommandFailed, add_metric_rows, field_table, fmt, literal, printable
from rlnas.errors import StorageError
from rlnas.spaces.base import count_networks
from rlnas.trial import TrialState


def run_and_report(study: Any, trials: int | None, budget: float | None, options: Any, console: Console) -> int:
    """Optimize, print the summary; exit 130 on Ctrl-C, 1 when no trial completed or the storage
    failed during the run (disk full, read-only, database deleted)."""
    try:
        with failure_said_as_error():
            study.optimize(trials, budget, run=options)
    except KeyboardInterrupt:
        try:  # counted in the store: Ctrl-C may land between storing a trial and counting it
            trials = study.store.trials(study.record.id)
            stored = sum(t.state is not TrialState.RUNNING and not t.orphaned for t in trials)
        except Exception:  # noqa: BLE001 - the store cannot answer now (it says why at the next command)
            report_interrupted(f"continue with `{resume_command(study)}`")
        else:
            report_interrupted(f"{stored} trials are stored; continue with `{resume_command(study)}`")
        return EXIT_INTERRUPTED
    except StorageError as exc:
        raise CommandFailed(f"the search stopped, storage failed: {exc} (what was stored before is kept)") from None
    stored = study.trials
    print_summary(study, stored, console)
    if not any(t.state is TrialState.COMPLETE for t in stored):
        reason, count = most_common_failure(stored)
        raise CommandFailed(f"no trial of study {study.name!r} completed"
                            + (f"; most common failure ({count}x): {reason}" if reason else ""))
    return 0


@contextlib.contextmanager
def failure_said_as_error() -> Iterator[None]:
    """Silence optimize's warning that no trial completed: a command says so as its error (exit 1)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"study .* no trial has completed")
        yield


def report_interrupted(what_next: str) -> None:
    """The line of a command stopped by Ctrl-C, on standard error like the errors: ``rlnas: interrupted: ...``."""
    sys.stderr.write(f"rlnas: interrupted: {printable(what_next)}\n")


def failure_kind(error: str) -> str:
    """What a failure is counted as: the exception's name of ``Name: message`` (``timeout`` too), else the
    whole text (messages that name their trial's rule or network would otherwise each count once)."""
    match = re.match(r"([A-Za-z_][\w.]*): ", error)
    return match.group(1) if match else error


def most_common_failure(trials: list[Any]) -> tuple[str | None, int]:
    """The most frequent kind of error of the failed (not orphaned) trials, said by its most frequent
    message (with ``e.g.`` where the kind's messages differ), and how many failed with that kind."""
    errors = [t.error or "unknown" for t in trials if t.state is TrialState.FAIL and not t.orphaned]
    if not errors:
        return None, 0
    kinds = [failure_kind(e) for e in errors]
    kind, count = Counter(kinds).most_common(1)[0]
    message, same = Counter(e for e, k in zip(errors, kinds) if k == kind).most_common(1)[0]
    if same == count:
        return message, count
    return f"{kind}, e.g. {message.removeprefix(f'{kind}: ')}", count


def resume_command(study: Any) -> str:
    """``rlnas resume NAME``, with ``--storage`` when the study is not in the default database."""
    import shlex

    from rlnas.store import DEFAULT_STORAGE

    url = getattr(study.store, "url", DEFAULT_STORAGE)  # (a password shows as ***)
    storage = "" if url == DEFAULT_STORAGE else f" --storage {shlex.quote(url)}"
    return f"rlnas resume {shlex.quote(study.name)}{storage}"


def print_summary(study: Any, trials: list[Any], console: Console) -> None:
    """The best architecture and the run's counts."""
    from rlnas.agents import shares_weights
    from rlnas.cli.best import found_title
    from rlnas.progress import format_seconds
    from rlnas.study import WEIGHT_SHARING_ANSWER, found_trial

    agent = study.record.agent
    best = found_trial([t for t in trials if t.state is TrialState.COMPLETE], agent)
    table = field_table(found_title(study.name, agent))
    if best is None:
        table.add_row("result", "no trial completed")
    else:
        table.add_row("architecture", literal(best.key))
        add_metric_rows(table, best, study.record.reward)
        table.add_row("found at trial", str(best.number))
        if shares_weights(agent):
            table.add_row("note", literal(WEIGHT_SHARING_ANSWER))
    evaluated = [t for t in trials if t.repeat_of is None and not t.orphaned and t.state.finished]
    failed = [t for t in evaluated if t.state is TrialState.FAIL]
    table.add_row("trials finished", str(len(evaluated)))
    distinct = count_networks(study.space, evaluated)
    table.add_row("distinct architectures", str(distinct))
    if evaluated and distinct <= len(evaluated) // 2 and not getattr(study.record, "reuse_repeats", False):
        table.add_row("note", literal(f"{len(evaluated) - distinct} of {len(evaluated)} trials evaluated an "
                                      "architecture again; with --reuse-repeats a new study answers repeats from "
                                      "the store without spending budget"))
    repeats = sum(t.repeat_of is not None for t in trials)
    if repeats:
        table.add_row("repeats answered from the store", str(repeats))
    if failed:
        reason, count = most_common_failure(trials)
        table.add_row("trials failed", literal(f"{len(failed)} (most common, {count}x: {reason})"))
    simulated = getattr(study.evaluator, "simulated_time", False)  # a table's training times
    table.add_row("evaluation time (simulated by the table)" if simulated else "evaluation time",
                  format_seconds(study.spent_seconds))
    optimum = getattr(study.evaluator, "test_acc_of_best_valid", None)
    if best is not None and callable(optimum) and "test_acc" in best.metrics:
        table.add_row("test acc of the table's best-valid cell", fmt(optimum()))
    console.print(table)
