"""``rlnas retrain``: train a study's answer from scratch with the ``train`` evaluator, as a study of its own.

The new study (default name ``NAME-retrain-SEED``) has one trial: the architecture proposed by
the ``fixed`` agent, trained on the source study's data set, with the network options the
source used (a supernet study's width multiplier, ``stem_stride`` and ``input_size``), so
``show``, ``best`` and ``export`` work on it. Running the command again with the same options
reports the stored result instead of training again.
"""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_storage, assignment, literal, open_existing_store
from rlnas.cli.summary import run_and_report
from rlnas.errors import ConfigError, RlnasError
from rlnas.trial import TrialState

COPIED_OPTIONS = ("dataset", "data_root", "split_seed", "dataset_options", "batch_size")
"""Options of the source study's evaluator that the training keeps."""


def add_parser(commands: Any) -> None:
    """Register ``retrain``."""
    p = commands.add_parser("retrain", help="train a study's architecture from scratch (stored as a study of its own)")
    p.add_argument("name", help="the study whose architecture to train")
    p.add_argument("--trial", type=int, default=None,
                   help="trial number (default: the study's answer: the last recorded trial of a weight-sharing "
                        "search, else the best trial)")
    p.add_argument("--epochs", type=float, default=10, help="training epochs (default 10)")
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (default the train evaluator's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch order (default 0)")
    p.add_argument("--as", dest="new_name", default=None, metavar="NAME",
                   help="name of the new study (default NAME-retrain-SEED)")
    p.add_argument("--eval-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                   help="extra train evaluator option (repeatable), e.g. augment=true")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_storage(p)
    p.set_defaults(run=run)


def answer_trial(store: Any, record: Any, number: int | None) -> Any:
    """Trial ``number``, or the study's answer (see ``--trial``); it must be COMPLETE."""
    from rlnas.agents import agent_class
    from rlnas.agents.base import WeightSharingAgent
    from rlnas.cli.export import chosen_trial

    if number is not None or not issubclass(agent_class(record.agent), WeightSharingAgent):
        return chosen_trial(store, record, number)
    done = [t for t in store.trials(record.id, [TrialState.COMPLETE]) if not t.orphaned]
    if not done:
        raise RlnasError(f"study {record.name!r} has no completed trial yet")
    return max(done, key=lambda t: t.slot)


def train_options(args: argparse.Namespace, record: Any) -> dict[str, Any]:
    """Train evaluator options: the source's data and network options, then the command's."""
    from rlnas.evaluators import build_evaluator
    from rlnas.study.spec import evaluator_identity

    source = evaluator_identity(record.evaluator or {})
    options = {k: source[k] for k in COPIED_OPTIONS if k in source}
    if source.get("name") in ("supernet", "train"):
        options["model_kwargs"] = build_evaluator(source).resolved_model_kwargs()
    options |= {"epochs": args.epochs, "seed": args.seed, "channels_last": True}
    if args.lr is not None:
        options["lr"] = args.lr
    return options | dict(args.eval_option)


def run(args: argparse.Namespace, console: Console) -> int:
    """Train the chosen architecture as a one-trial study and print the result."""
    from rlnas.evaluators import build_evaluator
    from rlnas.study import create_study, space_of
    from rlnas.study.spec import RunOptions

    if not args.epochs > 0:
        raise ConfigError(f"--epochs must be positive, got {args.epochs:g}")
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    trial = answer_trial(store, record, args.trial)
    space = space_of(record)
    evaluator = build_evaluator({"name": "train", "space": space, **train_options(args, record)},
                                threads=args.threads, device=args.device)
    name = args.new_name or f"{record.name}-retrain-{args.seed}"
    study = create_study(space=space, agent="fixed", agent_config={"key": trial.key}, evaluator=evaluator,
                         reward="valid_acc", seed=args.seed, name=name, storage=args.storage, load_if_exists=True)
    origin = {"study": record.name, "trial": trial.number, "key": trial.key}
    if study.record.settings.get("retrain_of") != origin:
        study.store.update_settings(study.record.id, dict(study.record.settings) | {"retrain_of": origin})
    console.print(literal(f"training trial {trial.number} of {record.name!r} ({trial.key}) as study {name!r}"))
    return run_and_report(study, 1, None, RunOptions(threads=args.threads, device=args.device), console)
