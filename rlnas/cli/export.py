"""``rlnas export``: every trial as CSV or JSON, or one architecture as JSON / its network as ONNX."""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_storage, assignment, literal, open_existing_store
from rlnas.cli.best import best_trial_of
from rlnas.errors import RlnasError
from rlnas.trial import TrialState


def add_parser(commands: Any) -> None:
    """Register ``export``."""
    p = commands.add_parser("export", help="write every trial of a study as CSV or JSON")
    p.add_argument("name")
    p.add_argument("--format", choices=("csv", "json"), default="csv")
    p.add_argument("--output", default=None, help="file to write (default: standard output)")
    p.add_argument("--onnx", default=None, metavar="FILE",
                   help="instead: write the network of the best (or --trial) architecture as ONNX "
                        "(untrained weights: the architecture, for deployment tests and latency)")
    p.add_argument("--arch", default=None, metavar="FILE",
                   help="instead: write the best (or --trial) architecture as JSON")
    p.add_argument("--trial", type=int, default=None, help="trial number for --onnx / --arch (default: best)")
    p.add_argument("--as-searched", action="store_true",
                   help="--onnx: the network as the train evaluator built it (its widths and classes)")
    p.add_argument("--model-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                   help="--onnx: network option, e.g. num_classes=100 (default: the paper's network)")
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


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` with a one-line error on failure."""
    try:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        raise RlnasError(f"cannot write {path}: {exc.strerror}") from None


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
        write_text(args.arch, json.dumps(data, indent=2) + "\n")
        console.print(literal(f"wrote architecture of trial {trial.number} to {args.arch}"))
    if args.onnx is not None:
        from rlnas.export import export_onnx, untrained_network

        model, input_shape = untrained_network(space, candidate, record.evaluator if args.as_searched else None,
                                               dict(args.model_option))
        try:
            export_onnx(model, args.onnx, input_shape)
        except OSError as exc:
            raise RlnasError(f"cannot write {args.onnx}: {exc.strerror}") from None
        console.print(literal(f"wrote the network of trial {trial.number} ({trial.key}) to {args.onnx}"))
    return 0


def run(args: argparse.Namespace, console: Console) -> int:
    """Write the trials, or one trial's architecture / network."""
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    if args.onnx is not None or args.arch is not None:
        return export_one(args, console, store, record)
    trials = store.trials(record.id)
    columns, rows = trial_rows(trials)
    if args.format == "json":
        for row, t in zip(rows, trials):
            row["candidate"] = t.candidate
        text = json.dumps({"study": record.name, "space": record.space_name, "agent": record.agent,
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
