"""The ``rlnas`` command: search, resume, ls, show, best, export.

Every user mistake ends with one line ``rlnas: error: ...`` and exit code 2; nothing stored
is changed by a command that fails its checks.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from rlnas.errors import ConfigError, RlnasError, StorageError
from rlnas.store import DEFAULT_STORAGE

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake on one line (no usage dump) with exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"rlnas: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(EXIT_USAGE)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


def _parse_assignment(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``rlnas`` command."""
    from rlnas import __version__
    from rlnas.study import DEFAULT_CHECKPOINT_EVERY

    parser = _Parser(prog="rlnas", description="Neural architecture search with reinforcement learning.")
    parser.add_argument("--version", action="version", version=f"rlnas {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def storage(p: argparse.ArgumentParser) -> None:
        p.add_argument("--storage", default=DEFAULT_STORAGE,
                       help=f"SQLAlchemy URL of the database (default {DEFAULT_STORAGE})")

    search = commands.add_parser("search", help="start (or continue) a search")
    search.add_argument("--space", default="nb201", help="search space (default nb201)")
    search.add_argument("--agent", default="l2nas", help="search agent (default l2nas)")
    search.add_argument("--evaluator", default=None, help="evaluator (default: the space's tabular benchmark)")
    search.add_argument("--dataset", default=None,
                        help="nb201: cifar10 (default), cifar100 or imagenet16-120; train: digits (default), "
                             "mnist5k, cifar10 or imagefolder")
    search.add_argument("--epochs", type=float, default=None, help="train: epochs per candidate")
    search.add_argument("--data-root", default=None, help="train: folder of cifar10 batches or an image folder")
    search.add_argument("--threads", type=int, default=None,
                        help="train: torch threads per evaluation (default: torch's choice; 1 on a busy machine)")
    search.add_argument("--fidelity", type=int, default=200, help="nb201 reward after 200 (default) or 12 epochs")
    search.add_argument("--noisy", action="store_true", help="nb201: reward of one sampled training seed")
    search.add_argument("--latency-device", default="pixel3", help="nb201 latency column to report")
    search.add_argument("--eval-option", action="append", type=_parse_assignment, default=[], metavar="KEY=VALUE",
                        help="extra evaluator option (repeatable)")
    search.add_argument("--trials", type=int, default=None, help="number of trials (default 100 without a budget)")
    search.add_argument("--budget-seconds", type=float, default=None,
                        help="stop once this much (simulated) evaluation time is spent, e.g. 20000")
    search.add_argument("--seed", type=int, default=0)
    search.add_argument("--name", default=None, help="study name (default SPACE-AGENT-DATASET-SEED)")
    search.add_argument("--agent-config", type=_json_object, default={}, metavar="JSON",
                        help='agent options as a JSON object, e.g. \'{"population_size": 20}\'')
    search.add_argument("--set", action="append", type=_parse_assignment, default=[], metavar="KEY=VALUE",
                        help="one agent option (repeatable)")
    search.add_argument("--controller", default=None, help="controller of reinforce/ppo: factorized or lstm")
    search.add_argument("--init-from", default=None, metavar="STUDY",
                        help="start the agent from another study's agent (same space and agent, same storage)")
    search.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY,
                        help=f"agent checkpoint period in trials (default {DEFAULT_CHECKPOINT_EVERY}; 0: none)")
    search.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    storage(search)

    resume = commands.add_parser("resume", help="continue a stopped or crashed search")
    resume.add_argument("name")
    resume.add_argument("--trials", type=int, default=None, help="new total number of trials")
    resume.add_argument("--budget-seconds", type=float, default=None, help="new total simulated budget")
    resume.add_argument("--no-progress", action="store_true")
    storage(resume)

    ls = commands.add_parser("ls", help="list the studies in a database")
    storage(ls)

    show = commands.add_parser("show", help="describe a study and its latest trials")
    show.add_argument("name")
    show.add_argument("--last", type=int, default=10, help="how many of the latest trials to list")
    storage(show)

    best = commands.add_parser("best", help="the best architecture of a study")
    best.add_argument("name")
    storage(best)

    query = commands.add_parser("query", help="look one NB201 architecture up in the shipped table")
    query.add_argument("arch", help="official arch string, e.g. '|nor_conv_3x3~0|+|...|'")
    query.add_argument("--dataset", default="cifar10", help="cifar10, cifar100 or imagenet16-120")
    query.add_argument("--fidelity", type=int, default=200)

    export = commands.add_parser("export", help="write every trial of a study as CSV or JSON")
    export.add_argument("name")
    export.add_argument("--format", choices=("csv", "json"), default="csv")
    export.add_argument("--output", default=None, help="file to write (default: standard output)")
    export.add_argument("--onnx", default=None, metavar="FILE",
                        help="instead: write the network of the best (or --trial) architecture as ONNX")
    export.add_argument("--arch", default=None, metavar="FILE",
                        help="instead: write the best (or --trial) architecture as JSON")
    export.add_argument("--trial", type=int, default=None, help="trial number for --onnx / --arch (default: best)")
    export.add_argument("--as-searched", action="store_true",
                        help="--onnx: the network as the train evaluator built it (its widths and classes)")
    export.add_argument("--model-option", action="append", type=_parse_assignment, default=[], metavar="KEY=VALUE",
                        help="--onnx: network option, e.g. num_classes=100 (default: the paper's network)")
    storage(export)
    return parser


# --------------------------------------------------------------------- search
def _evaluator_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from rlnas.spaces import create_space

    create_space(args.space)  # unknown space -> one-line error before anything else
    name = args.evaluator or ("nb201" if args.space == "nb201" else None)
    if name is None:
        raise ConfigError(f"space {args.space!r} has no tabular benchmark: choose one with --evaluator (e.g. train)")
    options: dict[str, Any] = {}
    if name == "nb201":
        options |= {"dataset": args.dataset or "cifar10", "fidelity": args.fidelity, "noisy": args.noisy,
                    "latency_device": args.latency_device}
    else:
        options |= {"space": args.space, "dataset": args.dataset or "digits"}
        if args.epochs is not None:
            options["epochs"] = args.epochs
        if args.data_root is not None:
            options["data_root"] = args.data_root
        if args.threads is not None:
            if args.threads < 1:
                raise ConfigError(f"--threads must be >= 1, got {args.threads}")
            options["threads"] = args.threads
    options |= dict(args.eval_option)
    return name, options


def _agent_config(args: argparse.Namespace) -> dict[str, Any]:
    config = dict(args.agent_config) | dict(args.set)
    if args.controller is not None:
        config["controller"] = args.controller
    return config


def _check_limits(trials: int | None, budget: float | None) -> None:
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials must be a positive number, got {trials}")
    if budget is not None and not budget > 0:
        raise ConfigError(f"--budget-seconds must be positive, got {budget}")


def cmd_search(args: argparse.Namespace, console: Console) -> int:
    from rlnas.evaluators import create_evaluator
    from rlnas.study import create_study

    _check_limits(args.trials, args.budget_seconds)
    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    trials = args.trials if args.trials is not None or args.budget_seconds is not None else 100
    tabular = (args.evaluator or ("nb201" if args.space == "nb201" else "train")) == "nb201"
    dataset = args.dataset or ("cifar10" if tabular else "digits")
    name = args.name or f"{args.space}-{args.agent}-{dataset}-{args.seed}"
    _check_existing_space(args.storage, name, args.space)
    evaluator_name, options = _evaluator_options(args)
    evaluator = create_evaluator(evaluator_name, **options)
    source = _transfer_source(args)
    study = create_study(space=args.space, agent=args.agent, agent_config=_agent_config(args), evaluator=evaluator,
                         seed=args.seed, name=name, storage=args.storage, checkpoint_every=args.checkpoint_every,
                         load_if_exists=True)
    _check_same_definition(study, args.agent, _agent_config(args), evaluator, args.seed)
    if source is not None and study.settings.get("init_from") != source.name:
        if study.n_finished:
            raise ConfigError(f"study {name!r} has already started: --init-from applies only to a new study")
        study.init_from(source)
    return _run(study, trials, args.budget_seconds, not args.no_progress, console)


def _transfer_source(args: argparse.Namespace) -> Any:
    """The study named by ``--init-from``, checked against the requested space and agent."""
    if args.init_from is None:
        return None
    from rlnas.spaces import create_space
    from rlnas.study import load_study

    from rlnas.agents import Agent, agent_class

    if agent_class(args.agent).load_policy is Agent.load_policy:
        raise ConfigError(f"agent {args.agent!r} has nothing to transfer: --init-from is not supported")
    source = load_study(args.init_from, args.storage)
    space = create_space(args.space)
    if source.space.fingerprint != space.fingerprint:
        raise ConfigError(f"--init-from {args.init_from!r}: that study searched space {source.space.name!r}, "
                          f"not {args.space!r}")
    if source.record.agent != args.agent:
        raise ConfigError(f"--init-from {args.init_from!r}: that study used agent {source.record.agent!r}, "
                          f"not {args.agent!r}")
    return source


def _check_existing_space(storage: str, name: str, space: str) -> None:
    """Refuse early (before building anything) to continue a study with another space."""
    from rlnas.errors import StudyNotFound
    from rlnas.spaces import create_space
    from rlnas.store import open_store

    wanted = create_space(space)
    store = open_store(storage)
    try:
        record = store.get_study(name)
    except StudyNotFound:
        return
    finally:
        store.close()
    if record.fingerprint != wanted.fingerprint:
        raise ConfigError(f"study {name!r} already exists with space {record.space_name!r}, not {space!r}: "
                          "choose another --name")


def _check_same_definition(study: Any, agent: str, config: dict[str, Any], evaluator: Any, seed: int) -> None:
    """An existing study may only be continued with the definition it was created with."""
    from rlnas.agents import agent_class

    record = study.record
    wanted_config = agent_class(agent).Config.from_dict(config).to_dict()
    checks = [("agent", record.agent, agent), ("agent config", record.agent_config, wanted_config),
              ("seed", record.seed, seed), ("evaluator", record.evaluator, evaluator.spec())]
    for what, stored, wanted in checks:
        if stored != wanted:
            raise ConfigError(f"study {record.name!r} exists with {what} {stored!r}, not {wanted!r}: "
                              "choose another --name or continue it with `rlnas resume`")


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    from rlnas.study import load_study

    _check_limits(args.trials, args.budget_seconds)
    study = load_study(args.name, args.storage)
    trials, budget = args.trials, args.budget_seconds
    if trials is None and budget is None:
        trials, budget = study.settings.get("n_trials"), study.settings.get("budget_seconds")
    return _run(study, trials, budget, not args.no_progress, console)


def _run(study: Any, trials: int | None, budget: float | None, progress: bool, console: Console) -> int:
    try:
        study.optimize(trials, budget, progress=progress)
    except KeyboardInterrupt:
        console.print(f"interrupted: {study.n_finished} trials are stored; continue with "
                      f"`rlnas resume {study.name}`", style="yellow")
        return EXIT_INTERRUPTED
    _print_best(study, console)
    return 0


# ---------------------------------------------------------------- read-only
def _open(args: argparse.Namespace) -> Any:
    from rlnas.store import open_store

    return open_store(args.storage, create=False)


def _best_trial(store: Any, record: Any) -> Any:
    from rlnas.trial import TrialState

    best = None
    for t in store.trials(record.id, [TrialState.COMPLETE]):
        if t.reward is not None and (best is None or t.reward > best.reward or
                                     (t.reward == best.reward and t.slot < best.slot)):
            best = t
    return best


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_best(study: Any, console: Console) -> None:
    from rlnas.progress import format_seconds

    best = study.best_trial
    table = Table(title=f"Best architecture of study {study.name!r}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    if best is None:
        table.add_row("result", "no trial completed")
    else:
        table.add_row("architecture", best.key)
        table.add_row(f"reward ({study.record.reward})", _fmt(best.reward))
        for metric, value in best.metrics.items():
            if metric != study.record.reward:
                table.add_row(metric, _fmt(value))
        table.add_row("found at trial", str(best.number))
    table.add_row("trials finished", str(study.n_finished))
    table.add_row("evaluation time (simulated for tables)", format_seconds(study.spent_seconds))
    optimum = getattr(study.evaluator, "test_acc_of_best_valid", None)
    if best is not None and callable(optimum) and "test_acc" in best.metrics:
        table.add_row("test acc of the table's best-valid cell", _fmt(optimum()))
    console.print(table)


def cmd_ls(args: argparse.Namespace, console: Console) -> int:
    from rlnas.trial import TrialState

    store = _open(args)
    table = Table(title=f"Studies in {store.url if hasattr(store, 'url') else args.storage}")
    for column in ("name", "space", "agent", "evaluator", "seed", "complete", "failed", "best reward", "created"):
        table.add_column(column)
    for record in store.list_studies():
        trials = store.trials(record.id)
        complete = [t for t in trials if t.state is TrialState.COMPLETE]
        failed = sum(t.state is TrialState.FAIL for t in trials)
        best = max((t.reward for t in complete if t.reward is not None), default=None)
        evaluator = " ".join(str(v) for k, v in record.evaluator.items() if k in ("name", "dataset"))
        table.add_row(record.name, record.space_name, record.agent, evaluator, str(record.seed), str(len(complete)),
                      str(failed), _fmt(best), record.created_at.strftime("%Y-%m-%d %H:%M") if record.created_at else "-")
    console.print(table)
    return 0


def cmd_show(args: argparse.Namespace, console: Console) -> int:
    if args.last < 0:
        raise ConfigError(f"--last must be >= 0, got {args.last}")
    store = _open(args)
    record = store.get_study(args.name)
    trials = store.trials(record.id)
    about = Table(title=f"Study {record.name!r}", show_header=False)
    about.add_column("field", style="bold")
    about.add_column("value")
    rows = [("space", f"{record.space_name} (fingerprint {record.fingerprint})"), ("agent", record.agent),
            ("agent config", json.dumps(record.agent_config)), ("evaluator", json.dumps(record.evaluator)),
            ("reward", record.reward), ("seed", str(record.seed)), ("settings", json.dumps(record.settings)),
            ("rlnas version", record.version), ("trials stored", str(len(trials)))]
    for row in rows:
        about.add_row(*row)
    best = _best_trial(store, record)
    about.add_row("best", "-" if best is None else f"{best.key}  reward {_fmt(best.reward)} (trial {best.number})")
    console.print(about)
    if args.last:
        listing = Table(title=f"Last {min(args.last, len(trials))} trials")
        for column in ("number", "state", "architecture", "reward", "test_acc", "cost s", "note"):
            listing.add_column(column)
        for t in trials[-args.last:]:
            note = t.error or ""
            listing.add_row(str(t.number), t.state.value, t.key, _fmt(t.reward), _fmt(t.metrics.get("test_acc")),
                            _fmt(t.cost_seconds, 1), note)
        console.print(listing)
    return 0


def cmd_best(args: argparse.Namespace, console: Console) -> int:
    store = _open(args)
    record = store.get_study(args.name)
    best = _best_trial(store, record)
    if best is None:
        raise RlnasError(f"study {record.name!r} has no completed trial yet")
    table = Table(title=f"Best architecture of study {record.name!r}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("architecture", best.key)
    table.add_row(f"reward ({record.reward})", _fmt(best.reward))
    for metric, value in best.metrics.items():
        if metric != record.reward:
            table.add_row(metric, _fmt(value))
    table.add_row("trial", str(best.number))
    console.print(table)
    return 0


def trial_rows(trials: Sequence[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Flat rows (one per trial: number, state, key, reward, metrics, ...) and their columns."""
    metric_names = sorted({m for t in trials for m in t.metrics})
    columns = ["number", "slot", "state", "key", "reward", *metric_names, "cost_seconds", "orphaned", "error",
               "started_at", "finished_at"]
    rows = []
    for t in trials:
        row = {"number": t.number, "slot": t.slot, "state": t.state.value, "key": t.key, "reward": t.reward}
        row |= {m: t.metrics.get(m) for m in metric_names}
        row |= {"cost_seconds": t.cost_seconds, "orphaned": t.orphaned, "error": t.error,
                "started_at": t.started_at.isoformat() if t.started_at else None,
                "finished_at": t.finished_at.isoformat() if t.finished_at else None}
        rows.append(row)
    return columns, rows


def _chosen_trial(store: Any, record: Any, number: int | None) -> Any:
    from rlnas.trial import TrialState

    if number is None:
        best = _best_trial(store, record)
        if best is None:
            raise RlnasError(f"study {record.name!r} has no completed trial yet")
        return best
    for t in store.trials(record.id):
        if t.number == number:
            if t.state is not TrialState.COMPLETE:
                raise RlnasError(f"trial {number} of study {record.name!r} is {t.state.value}, not COMPLETE")
            return t
    raise RlnasError(f"study {record.name!r} has no trial {number}")


def _export_architecture(args: argparse.Namespace, console: Console, store: Any, record: Any) -> int:
    from rlnas.export import export_architecture_json, export_onnx, model_input_shape
    from rlnas.study import space_of

    trial = _chosen_trial(store, record, args.trial)
    space = space_of(record)
    candidate = space.candidate(trial.candidate)
    if args.arch is not None:
        data = export_architecture_json(space, candidate) | {"study": record.name, "trial": trial.number,
                                                             "reward": trial.reward, "metrics": trial.metrics}
        _write_text(args.arch, json.dumps(data, indent=2) + "\n")
        console.print(f"wrote architecture of trial {trial.number} to {args.arch}")
    if args.onnx is not None:
        import torch

        from rlnas.models import create_model

        options, input_shape = dict(args.model_option), None
        if args.as_searched:
            searched, input_shape = _searched_model(record)
            options = searched | options
        torch.manual_seed(0)  # untrained weights: the same network on every export
        model = create_model(space, candidate, **options)
        try:
            export_onnx(model, args.onnx, input_shape or model_input_shape(space, model))
        except OSError as exc:
            raise RlnasError(f"cannot write {args.onnx}: {exc.strerror}") from None
        console.print(f"wrote the network of trial {trial.number} ({trial.key}) to {args.onnx}")
    return 0


def _searched_model(record: Any) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Model options and input shape of the study's train evaluator (``--as-searched``)."""
    from rlnas.evaluators import create_evaluator

    spec = dict(record.evaluator)
    if spec.get("name") != "train":
        raise ConfigError(f"--as-searched needs a study of the train evaluator; {record.name!r} used "
                          f"{spec.get('name')!r}, whose networks are the papers' (the default)")
    evaluator = create_evaluator(spec.pop("name"), **spec)
    return evaluator.resolved_model_kwargs(), tuple(evaluator.data.input_shape)


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    except OSError as exc:
        raise RlnasError(f"cannot write {path}: {exc.strerror}") from None


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    store = _open(args)
    record = store.get_study(args.name)
    if args.onnx is not None or args.arch is not None:
        return _export_architecture(args, console, store, record)
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
        _write_text(args.output, text)
        console.print(f"wrote {len(rows)} trials to {args.output}")
    return 0


def cmd_query(args: argparse.Namespace, console: Console) -> int:
    from rlnas.evaluators import create_evaluator
    from rlnas.spaces import create_space

    candidate = create_space("nb201").from_key(args.arch)
    evaluator = create_evaluator("nb201", dataset=args.dataset, fidelity=args.fidelity)
    measurement = evaluator.evaluate(candidate)
    table = Table(title=f"NAS-Bench-201 {args.dataset}, {args.fidelity}-epoch reward", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    table.add_row("architecture", args.arch)
    table.add_row("index", str(measurement.info.get("index")))
    for metric, value in measurement.metrics.items():
        table.add_row(metric, _fmt(value))
    table.add_row("cost_seconds (simulated)", _fmt(measurement.cost_seconds, 1))
    console.print(table)
    return 0


COMMANDS = {"search": cmd_search, "query": cmd_query, "resume": cmd_resume, "ls": cmd_ls, "show": cmd_show, "best": cmd_best,
            "export": cmd_export}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rlnas`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    console = Console(stderr=args.command in ("export",))
    if not console.is_terminal:
        console.width = max(console.width, 160)  # logs and pipes: do not cut architecture strings
    try:
        return COMMANDS[args.command](args, console)
    except (RlnasError, StorageError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"rlnas: error: {message}\n")
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
