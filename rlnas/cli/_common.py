"""What the command modules share: the one-line-error parser, option types, run options, printing."""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rlnas.errors import ConfigError, RlnasError
from rlnas.store import DEFAULT_STORAGE

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake on one line (no usage dump) with exit code 2, and reads
    ``--beta -7e-2`` or ``--beta -inf`` as a value (argparse took them for options: "expected one argument")."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-inf(inity)?$",
                                                   re.IGNORECASE)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"rlnas: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


class CommandFailed(RlnasError):
    """The command ran but its result is a failure (exit code 1, not 2)."""


def json_object(text: str) -> dict[str, Any]:
    """``--agent-config`` values: a JSON object."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def assignment(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE read as JSON when it is JSON (``3``, ``true``, ``[1,2]``), else as text."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def add_storage(parser: argparse.ArgumentParser) -> None:
    """``--storage URL``."""
    parser.add_argument("--storage", default=DEFAULT_STORAGE,
                        help=f"SQLAlchemy URL of the database (default {DEFAULT_STORAGE})")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """How a search runs; none of it is stored as part of the study, so it may change on every run."""
    group = parser.add_argument_group("how to run (may change on every search / resume)")
    group.add_argument("--executor", default="inline", choices=("inline", "processes", "ray"),
                       help="where evaluations run (default inline: one at a time in this process)")
    group.add_argument("--workers", type=int, default=None,
                       help="evaluations at once (processes, ray; default 2 for those, 1 inline)")
    group.add_argument("--threads", type=int, default=None,
                       help="torch threads per evaluation (default: torch's choice; resume: the last "
                            "run's, as results depend on it; use 1 on a busy machine)")
    group.add_argument("--device", default="cpu", help="torch device of training evaluators (default cpu)")
    group.add_argument("--cpus-per-trial", type=float, default=1.0, help="ray: CPUs per trial (default 1)")
    group.add_argument("--gpus-per-trial", type=float, default=0.0, help="ray: GPUs per trial (default 0)")
    group.add_argument("--ray-address", default=None,
                       help="ray: address of an existing cluster (default: start a local Ray)")
    group.add_argument("--trial-timeout", type=float, default=None, metavar="SECONDS",
                       help="stop a trial running longer than this and store it FAIL (reason: timeout)")
    group.add_argument("--max-retries", type=int, default=1,
                       help="runs of a trial whose worker died, after the first (default 1)")
    group.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run_options(args: argparse.Namespace) -> Any:
    """The :class:`~rlnas.study.RunOptions` of parsed arguments; with ``--executor ray``, Ray must be installed
    and its cluster reachable (one line, before a study is stored or its target changed)."""
    from rlnas.study.spec import RAY_ONLY_DEFAULTS, RunOptions

    ray_only = [f"--{name.replace('_', '-')}" for name, default in RAY_ONLY_DEFAULTS.items()
                if getattr(args, name) not in (None, default)]
    if ray_only and args.executor != "ray":  # named as typed (RunOptions names its Python arguments)
        verb = "is an option" if len(ray_only) == 1 else "are options"
        raise ConfigError(f"{', '.join(ray_only)} {verb} of --executor ray, not of {args.executor}")
    workers = args.workers if args.workers is not None else (1 if args.executor == "inline" else 2)
    options = RunOptions(executor=args.executor, workers=workers, threads=args.threads, device=args.device,
                         cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                         trial_timeout=args.trial_timeout, max_retries=args.max_retries, ray_address=args.ray_address,
                         progress=not args.no_progress)
    if options.executor == "ray":
        from rlnas.executors.ray_executor import check_usable

        check_usable(options.ray_address)
    return options


def check_limits(trials: int | None, budget: float | None) -> None:
    """``--trials`` and ``--budget-seconds`` must be positive."""
    from rlnas.errors import ConfigError

    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be a positive number, got {trials}")
    if budget is not None and not budget > 0:
        raise ConfigError(f"--budget-seconds must be positive, got {budget}")


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: ``-`` for none, floats rounded (a small one to ``digits`` significant digits: a learning
    rate of 1e-4 is not 0.000)."""
    from rlnas.reports.frame import number_text

    if value is None:
        return "-"
    return number_text(value, digits) if isinstance(value, float) else str(value)


def printable(value: Any) -> str:
    """``str(value)`` with control characters (escape sequences, bells, ...) written as ``\\x1b``
    etc., so that stored text cannot drive the terminal."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def literal(value: Any) -> Text:
    """Text shown as is: never read as rich markup, control characters escaped (study names,
    keys and error messages come from users and evaluators)."""
    return Text(printable(value))


def field_table(title: str) -> Table:
    """A two-column table of fields and values."""
    table = Table(title=literal(title), show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    return table


def add_metric_rows(table: Table, trial: Any, reward: Any) -> None:
    """Rows of ``trial``'s reward and its other metrics."""
    shown = reward if isinstance(reward, str) else json.dumps(reward) if isinstance(reward, Mapping) else "reward"
    table.add_row(literal(f"reward ({shown})"), fmt(trial.reward))
    for metric, value in trial.metrics.items():
        if metric != reward:
            table.add_row(literal(metric), fmt(value))


def open_existing_store(storage: str) -> Any:
    """The store at ``storage``; an error if there is no rlnas database there."""
    from rlnas.store import open_store

    return open_store(storage, create=False)


def write_output(path: str | Path, data: bytes | str) -> Path:
    """Write an output file of a command: missing folders are created (the one rule for every
    ``-o`` / ``--output`` / ``--onnx`` / ``--arch``), the file appears whole or not at all."""
    from rlnas.files import write_atomically

    try:
        return write_atomically(path, data.encode("utf-8") if isinstance(data, str) else data)
    except OSError as exc:
        raise RlnasError(f"cannot write {path or repr(path)}: {exc.strerror}") from None


STDOUT_PIECE = 1 << 16
"""Characters per write of :func:`write_stdout`."""


def write_stdout(text: str) -> None:
    """Write ``text`` to standard output in flushed pieces: a single large write that a full disk takes only in
    part is not reported by Python's buffered writer (the rest would be lost without an error)."""
    for start in range(0, len(text), STDOUT_PIECE):
        sys.stdout.write(text[start:start + STDOUT_PIECE])
        sys.stdout.flush()


class _PiecewiseStdout:
    """Standard output as rich writes to it: each write through :func:`write_stdout` (a table is one write);
    everything else is the current ``sys.stdout``'s."""

    def write(self, text: str) -> int:
        write_stdout(text)
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)


def make_console(stderr: bool = False) -> Console:
    """A console that does not cut long architecture strings when writing to a pipe or a log."""
    console = Console(stderr=True) if stderr else Console(file=_PiecewiseStdout())  # type: ignore[arg-type]
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


__all__ = ["Parser", "CommandFailed", "EXIT_USAGE", "EXIT_FAILED", "EXIT_INTERRUPTED", "json_object", "assignment",
           "add_storage", "add_run_options", "run_options", "check_limits", "fmt", "literal", "field_table",
           "add_metric_rows", "open_existing_store", "make_console", "write_output", "write_stdout"]
