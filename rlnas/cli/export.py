"""``rlnas export``: every trial as CSV or JSON, one architecture as JSON / its network as ONNX, or the
best update rules of an optimizer search as a torch-only Python module."""
from __future__ import annotations

import argparse
import csv
import io
import math
import os
from collections.abc import Sequence
from typing import Any

from rich.console import Console

from rlnas.checks import MAX_EPOCHS
from rlnas.cli._common import add_storage, assignment, literal, open_existing_store, write_output, write_stdout
from rlnas.cli.best import found_trial_of
from rlnas.errors import ConfigError, RlnasError
from rlnas.jsonsafe import strict_json_text
from rlnas.trial import TrialState


def add_parser(commands: Any) -> None:
    """Register ``export``."""
    p = commands.add_parser("export", help="write a study's trials (CSV, JSON), an architecture (JSON), its "
                                           "network (ONNX) or found update rules (a Python module)")
    p.add_argument("name")
    p.add_argument("--format", choices=("csv", "json"), default=None, help="of the trials (default csv)")
    p.add_argument("-o", "--output", default=None, help="file to write (default, or '-': standard output)")
    p.add_argument("--onnx", default=None, metavar="FILE",
                   help="instead: write the network of the best (or --trial) architecture as ONNX: with the "
                        "trained weights the train evaluator kept for that trial, or those a TuNAS (supernet) "
                        "study's network inherits from its supernet, else untrained (seed 0) weights, and the "
                        "command says which and why")
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
    p.add_argument("--optimizer", default=None, metavar="FILE.py",
                   help="instead: write the best update rules of an optimizer search as a Python module of "
                        "torch.optim.Optimizer classes that needs only torch")
    p.add_argument("--top", type=int, default=None,
                   help="--optimizer: how many distinct rules, best first (default 3)")
    p.add_argument("--finetune-epochs", type=float, default=0.0,
                   help="--onnx of a weight-sharing study: fine-tune the inherited weights this many epochs first")
    p.add_argument("--threads", type=int, default=None, help="torch threads for --finetune-epochs")
    add_storage(p)
    p.set_defaults(run=run, stderr_console=True)


def trial_rows(trials: Sequence[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Flat rows (one per trial: number, state, key, reward, metrics, ...) and their columns; a metric
    named like a column of its own (``number``, ``error``, ...) is the column ``metric_<name>``."""
    from rlnas.reports.frame import metric_columns

    fixed = ["number", "slot", "state", "key", "reward", "cost_seconds", "orphaned", "repeat_of", "error",
             "started_at", "finished_at", "candidate"]  # the JSON rows have a candidate too
    metrics = metric_columns(sorted({m for t in trials for m in t.metrics}), fixed)
    columns = [*fixed[:5], *metrics.values(), *fixed[5:-1]]
    rows = []
    for t in trials:
        row = {"number": t.number, "slot": t.slot, "state": t.state.value, "key": t.key, "reward": t.reward}
        row |= {column: t.metrics.get(m) for m, column in metrics.items()}
        row |= {"cost_seconds": t.cost_seconds, "orphaned": t.orphaned, "repeat_of": t.repeat_of, "error": t.error,
                "started_at": t.started_at.isoformat() if t.started_at else None,
                "finished_at": t.finished_at.isoformat() if t.finished_at else None}
        rows.append(row)
    return columns, rows


def chosen_trial(store: Any, record: Any, number: int | None) -> Any:
    """The best trial (a weight-sharing search's answer: its last recorded trial), or COMPLETE trial ``number``."""
    if number is None:
        return found_trial_of(store, record)
    for t in store.trials(record.id):
        if t.number == number:
            if t.state is not TrialState.COMPLETE:
                raise RlnasError(f"trial {number} of study {record.name!r} is {t.state.value}, not COMPLETE")
            return t
    raise RlnasError(f"study {record.name!r} has no trial {number}")


def check_output(path: str, force: bool) -> None:
    """Refuse to overwrite a database ever, and any other existing file without ``--force``; refuse what is
    not a file to write (an empty path, a folder, a device, a pipe: see :func:`rlnas.files.output_target`)."""
    from rlnas.files import folder_problem, is_database, journal_of, output_target

    if path == "-":  # not a file named "-" (export --output - means standard output, and is never checked here)
        raise RlnasError("cannot write '-': name a file (only the trials of rlnas export go to standard output)")
    database = journal_of(path) if path else None
    if database is not None:
        raise RlnasError(f"refusing to write {path}: SQLite keeps the journal of database {database} there")
    if path and is_database(path):  # a link to one too
        raise RlnasError(f"refusing to overwrite {path}: it is a database")
    try:
        path = str(output_target(path))
    except OSError as exc:
        raise RlnasError(f"cannot write {path or repr(path)}: {exc.strerror}") from None
    problem = folder_problem(os.path.dirname(os.path.abspath(path)))  # before hours of training, not after
    if problem is not None:
        raise RlnasError(f"cannot write {path}: {problem}")
    if not os.path.exists(path):
        return
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
    if args.finetune_epochs and args.untrained:
        raise RlnasError("--finetune-epochs fine-tunes the weights a TuNAS (supernet) study's network inherits, and "
                         "--untrained exports it without them: give one of the two")
    if args.finetune_epochs and not inherits_weights(record):
        if record.agent == "enas":
            what = "an ENAS study's network gets trained weights with rlnas retrain"
        elif dict(record.evaluator).get("name") == "train":
            what = f"study {record.name!r} ({record.agent}) trained its networks itself"
        else:
            what = (f"study {record.name!r} looked its networks up in a table ({dict(record.evaluator).get('name')}) "
                    "and has no weights to fine-tune")
        raise RlnasError(f"--finetune-epochs applies to the weights a TuNAS (supernet) study's network inherits; "
                         f"{what}")
    if not args.untrained and inherits_weights(record):
        model, shape = inherited_network(args, record, candidate)
        tuned = f", fine-tuned {args.finetune_epochs:g} epochs" if args.finetune_epochs else ""
        return model, shape, f"with the weights it inherits from the study's supernet{tuned}"
    if not args.untrained:
        try:
            model, shape = trained_network(record, trial)
            if args.model_option or args.as_searched:
                raise RlnasError("--model-option and --as-searched apply to untrained networks; "
                                 "trained weights come with their own network (add --untrained to change it)")
            return model, shape, "with the weights it was trained with during the search"
        except NoTrainedWeights as exc:
            why = str(exc)
    options, shape = ({}, None) if args.as_searched else study_model_options(record.evaluator)
    chosen = dict(args.model_option)
    model, input_shape = untrained_network(space, candidate, record.evaluator if args.as_searched else None,
                                           options | chosen)
    shape = shape if shape and not args.as_searched else input_shape
    if "in_channels" in chosen:  # the channels asked for, at the data set's image size
        shape = (int(chosen["in_channels"]), *shape[1:])
    return model, shape, f"with UNTRAINED (seed 0) weights: {why}"


def export_one(args: argparse.Namespace, console: Console, store: Any, record: Any) -> int:
    """``--arch`` / ``--onnx``: one trial's architecture or network (the network first: where it cannot
    be made or written, no architecture file is left either)."""
    from rlnas.study import space_of

    trial = chosen_trial(store, record, args.trial)
    space = space_of(record)
    candidate = space.candidate(trial.candidate)
    if args.onnx is not None:
        from rlnas.export import export_onnx
        from rlnas.models import list_models

        if space.name == "optimizer_rules":
            raise ConfigError(f"--onnx exports a network; study {record.name!r} searched update rules (export them "
                              f"with: rlnas export {record.name} --optimizer FILE.py)")
        if space.name not in list_models():  # e.g. NAS-Bench-Graph's cells: a table, no network rlnas builds
            raise ConfigError(f"--onnx exports a network, and rlnas builds none for space {space.name!r} of study "
                              f"{record.name!r} (networks are built for: {', '.join(list_models())}); its "
                              "architecture goes out with --arch")
        model, input_shape, weights = onnx_network(args, record, trial, space, candidate)
        try:
            export_onnx(model, args.onnx, input_shape)
        except OSError as exc:
            raise RlnasError(f"cannot write {args.onnx}: {exc.strerror}") from None
        console.print(literal(f"wrote the network of trial {trial.number} ({trial.key}) to {args.onnx} {weights}"))
    if args.arch is not None:
        from rlnas.export import export_architecture_json

        data = export_architecture_json(space, candidate) | {"study": record.name, "trial": trial.number,
                                                             "reward": trial.reward, "metrics": trial.metrics}
        write_text(args.arch, strict_json_text(data, indent=2) + "\n")
        console.print(literal(f"wrote architecture of trial {trial.number} to {args.arch}"))
    return 0


def export_optimizer(args: argparse.Namespace, console: Console, store: Any, record: Any) -> int:
    """``--optimizer``: the study's best rules as a torch-only optimizer module."""
    from rlnas.optim.export import best_rules, check_not_shadowing, is_module_file, optimizer_module_source

    if record.space_name != "optimizer_rules":
        raise ConfigError(f"--optimizer needs a study of the optimizer_rules space; {record.name!r} searched "
                          f"{record.space_name!r}")
    if not is_module_file(args.optimizer):
        raise ConfigError(f"--optimizer must name a .py file, got {args.optimizer!r}")
    check_not_shadowing(args.optimizer)
    top = 3 if args.top is None else args.top
    if top < 1:
        raise ConfigError(f"--top must be a positive number, got {top}")
    found = best_rules(store.trials(record.id), top)
    if not found:
        raise RlnasError(f"study {record.name!r} has no COMPLETE trial to export")
    path = write_output(args.optimizer, optimizer_module_source(
        found, title=f"Update rules found by rlnas study {record.name!r}"))
    fewer = f" (the study has {len(found)} distinct complete rule(s), fewer than --top {top})" * (len(found) < top)
    console.print(literal(f"wrote {len(found)} rule(s) to {path}{fewer}: "
                          + ", ".join(f"NOSRule{i} = {f.rule}" for i, f in enumerate(found, 1))))
    return 0


def inherits_weights(record: Any) -> bool:
    """Whether the study's evaluator can hand out a network with trained weights (``export_model``)."""
    from rlnas.evaluators import EVALUATORS

    name = (record.evaluator or {}).get("name")
    return name in EVALUATORS and callable(getattr(EVALUATORS.get(name), "export_model", None))


def inherited_network(args: argparse.Namespace, record: Any, candidate: Any) -> tuple[Any, tuple[int, ...]]:
    """The network of ``candidate`` with the weights of the study's newest checkpoint (optionally fine-tuned)."""
    import torch

    from rlnas.study import load_study

    if args.as_searched or args.model_option:
        raise RlnasError("--as-searched and --model-option do not apply to a weight-sharing study: its network "
                         "is the one the supernet trained")
    if not math.isfinite(args.finetune_epochs) or not 0 <= args.finetune_epochs <= MAX_EPOCHS:
        raise RlnasError(f"--finetune-epochs must be a number from 0 to {MAX_EPOCHS:,}, got {args.finetune_epochs:g}")
    study = load_study(record.name, args.storage, threads=args.threads)
    study.rebuild()
    evaluator = study.evaluator
    model = evaluator.export_model(candidate, finetune_epochs=args.finetune_epochs)  # type: ignore[union-attr]
    return model.to(memory_format=torch.contiguous_format), tuple(evaluator.data.input_shape)  # type: ignore[union-attr]


ONE_TRIAL_OPTIONS = {"trial": ("--trial", None), "as_searched": ("--as-searched", False),
                     "untrained": ("--untrained", False), "model_option": ("--model-option", []),
                     "finetune_epochs": ("--finetune-epochs", 0.0), "threads": ("--threads", None)}
"""Options of ``--arch`` / ``--onnx`` (all but ``--trial`` of ``--onnx`` alone): argument name -> (flag, default)."""


def check_request(args: argparse.Namespace) -> None:
    """Refuse options that the requested output would not use, and two outputs to one file: each
    ``rlnas export`` writes one kind of output (the trials, one trial's architecture and/or network,
    or the rule module)."""
    given = {name: flag for name, (flag, default) in ONE_TRIAL_OPTIONS.items() if getattr(args, name) != default}
    one_trial = args.arch is not None or args.onnx is not None
    kinds = [flag for flag, on in (("--output/--format (the trials)", args.output is not None or args.format),
                                   ("--arch/--onnx (one trial)", one_trial),
                                   ("--optimizer (the rules)", args.optimizer is not None)) if on]
    if len(kinds) > 1:
        raise ConfigError(f"one export writes one kind of output, not {' and '.join(kinds)}: run rlnas export "
                          "once for each")
    if "trial" in given and not one_trial:
        raise ConfigError("--trial applies to --arch and --onnx")
    onnx_only = [flag for name, flag in given.items() if name != "trial"]
    if onnx_only and args.onnx is None:
        raise ConfigError(f"{', '.join(onnx_only)} {'applies' if len(onnx_only) == 1 else 'apply'} to --onnx")
    if args.top is not None and args.optimizer is None:
        raise ConfigError("--top applies to --optimizer")
    if args.arch is not None and args.onnx is not None and os.path.abspath(args.arch) == os.path.abspath(args.onnx):
        raise ConfigError(f"--arch and --onnx name the same file {args.arch!r}")
    if args.onnx is not None:
        from rlnas.export import check_onnx_installed

        check_onnx_installed()


def run(args: argparse.Namespace, console: Console) -> int:
    """Write the trials, one trial's architecture / network, or the best update rules."""
    if args.output == "-":  # the trials to standard output, as without --output
        args.output, args.format = None, args.format or "csv"
    check_request(args)
    for path in (args.output, args.arch, args.onnx, args.optimizer):
        if path is not None:
            check_output(path, args.force)
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    if args.optimizer is not None:
        return export_optimizer(args, console, store, record)
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
        write_stdout(text)
    else:
        write_text(args.output, text)
        console.print(literal(f"wrote {len(rows)} trials to {args.output}"))
    return 0
