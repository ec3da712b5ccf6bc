"""``rlnas export``: every trial as CSV or JSON, or one architecture as JSON / its network as ONNX."""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_storage, assignment, literal, open_existing_store, write_output
from rlnas.cli.best import best_trial_of
from rlnas.errors import RlnasError
from rlnas.jsonsafe import strict_json_text
from rlnas.trial import TrialState


def add_parser(commands: Any) -> None:
    """Register ``export``."""
    p = commands.add_parser("export", help="write every trial of a study as CSV or JSON")
    p.add_argument("name")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--output", default=None, help="file to write (default: standard output)")
    p.add_argument("--onnx", default=None, metavar="FILE",
                   help="instead: write the network of the best (or --trial) architecture as ONNX: with the "
                        "trained weights the train evaluator kept for that trial, else untrained (seed 0) weights, "
                        "and the command says which and why")
    p.add_argument("--arch", default=None, metavar="FILE",
                   help="instead: write the best (or --trial) architecture as JSON")
    p.add_argument("--trial", type=int, default=None, help="trial number for --onnx / --arch (default: best)")
    p.add_argument("--as-searched", action="store_true",
                   help="--onnx without trained weights: the network as the train evaluator built it")
    p.add_argument("--untrained", action="store_true", help="--onnx: seed-0 weights even where trained ones exist")
    p.add_argument("--model-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                   help="--onnx, untrained: network option, e.g. width_mult=0.5 (default: the paper's network "
                        "with the classes of the study's data set)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing output file (a database is never overwritten)")
    add_storage(p)
    p.set_defaults(run=run, stderr_console=True)


def trial_rows(trials: Sequence[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Flat rows (one per trial: number, state, key, reward, metrics, ...) and their columns."""
    metric_names = sorted({m for t in trials for m in t.metrics})
    columns = ["number", "slot", "state", "key", "reward", *metric_names, "cost_seconds", "orphaned", "repeat_of",
               "error", "started_at", "finished_at"]
    rows = []
    for t in trials:
        row = {"number": t.number, "slot": t.slot, "state": t.state.value, "key": t.key, "reward": t.reward}
        row |= {m: t.metrics.get(m) for m in metric_names}
        row |= {"cost_seconds": t.cost_seconds, "orphaned": t.orphaned, "repeat_of": t.repeat_of, "error": t.error,
                "started_at": t.started_at.isoformat() if t.started_at else None,
                "finished_at": t.finished_at.isoformat() if t.finished_at else None}
        rows.append(row)
    return columns, rows


def chosen_trial(store: Any, record: Any, number: int | None) -> Any:
    """The best trial, or COMPLETE trial ``number``."""
    if number is None:
        return best_trial_of(store, record)
    for t in store.trials(record.id):
        if t.number == number:
            if t.state is not TrialState.COMPLETE:
                raise RlnasError(f"trial {number} of study {record.name!r} is {t.state.value}, not COMPLETE")
            return t
    raise RlnasError(f"study {record.name!r} has no trial {number}")


SQLITE_HEADER = b"SQLite format 3\x00"


def check_output(path: str, force: bool) -> None:
    """Refuse to overwrite a database ever, and any other existing file without ``--force``."""
    if os.path.isdir(path):
        raise RlnasError(f"cannot write {path}: it is a folder")
    if not os.path.exists(path):
        return
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError:
        header = b""
    if header == SQLITE_HEADER:
        raise RlnasError(f"refusing to overwrite {path}: it is a database")
    if not force:
        raise RlnasError(f"refusing to overwrite {path}: it exists (use --force to replace it)")


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (missing folders are created) with a one-line error on failure."""
    write_output(path, text)


def onnx_network(args: argparse.Namespace, record: Any, trial: Any, space: Any, candidate: Any) -> tuple[Any, Any, str]:
    """The network to export, its input shape, and a plain sentence saying which weights it carries."""
    from rlnas.evaluators.weights import NoTrainedWeights
    from rlnas.export import study_model_options, trained_network, untrained_network

    why = "--untrained was given"
    if not args.untrained:
        try:
            model, shape = trained_network(record, trial)
            if args.model_option or args.as_searched:
                raise RlnasError("--model-option and --as-searched apply to untrained networks; "
                                 "trained weights come with their own network (add --untrained to change it)")
            return model, shape, "with the weights it was trained with during the search"
        except NoTrainedWeights as exc:
            why = str(exc)
    options, shape = study_model_options(record.evaluator)
    model, input_shape = untrained_network(space, candidate, record.evaluator if args.as_searched else None,
                                           options | dict(args.model_option))
    return model, shape if shape and not args.as_searched else input_shape, f"with UNTRAINED (seed 0) weights: {why}"


def export_one(args: argparse.Namespace, console: Console, store: Any, record: Any) -> int:
    """``--arch`` / ``--onnx``: one trial's architecture or network."""
    from rlnas.study import space_of

    trial = chosen_trial(store, record, args.trial)
    space = space_of(record)
    candidate = space.candidate(trial.candidate)
    if args.arch is not None:
        from rlnas.export import export_architecture_json

        data = export_architecture_json(space, candidate) | {"study": record.name, "trial": trial.number,
                                                             "reward": trial.reward, "metrics": trial.metrics}
        write_text(args.arch, strict_json_text(data, indent=2) + "\n")
        console.print(literal(f"wrote architecture of trial {trial.number} to {args.arch}"))
    if args.onnx is not None:
        from rlnas.export import export_onnx

        model, input_shape, weights = onnx_network(args, record, trial, space, candidate)
        try:
            export_onnx(model, args.onnx, input_shape)
        except OSError as exc:
            raise RlnasError(f"cannot write {args.onnx}: {exc.strerror}") from None
        console.print(literal(f"wrote the network of trial {trial.number} ({trial.key}) to {args.onnx} {weights}"))
    return 0


def run(args: argparse.Namespace, console: Console) -> int:
    """Write the trials, or one trial's architecture / network."""
    for path in (args.output, args.arch, args.onnx):
        if path is not None:
            check_output(path, args.force)
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    if args.onnx is not None or args.arch is not None:
        return export_one(args, console, store, record)
    trials = store.trials(record.id)
    columns, rows = trial_rows(trials)
    if args.format == "json":
        for row, t in zip(rows, trials):
            row["candidate"] = t.candidate
        text = strict_json_text({"study": record.name, "space": record.space_name, "agent": record.agent,
                                 "evaluator": record.evaluator, "reward": record.reward, "seed": record.seed,
                                 "trials": rows}, indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        text = buffer.getvalue()
    if args.output is None:
        sys.stdout.write(text)
    else:
        write_text(args.output, text)
        console.print(literal(f"wrote {len(rows)} trials to {args.output}"))
    return 0
