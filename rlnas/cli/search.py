"""``rlnas search``: start a search (or continue one with the same definition)."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_run_options, add_storage, assignment, check_limits, json_object, run_options
from rlnas.cli.summary import run_and_report
from rlnas.errors import ConfigError

EVALUATOR_FLAGS = ("dataset", "epochs", "data_root", "fidelity", "noisy", "latency_device")
"""Flags that become evaluator options when given (each only for evaluators that take it)."""


def add_parser(commands: Any) -> None:
    """Register ``search`` and its options."""
    from rlnas.study import DEFAULT_CHECKPOINT_EVERY

    p = commands.add_parser("search", help="start (or continue) a search")
    what = p.add_argument_group("what to search (the study's stored definition)")
    what.add_argument("--space", default="nb201", help="search space (default nb201; see rlnas.list_spaces())")
    what.add_argument("--agent", default="l2nas", help="search agent (default l2nas)")
    what.add_argument("--evaluator", default=None, help="evaluator (default: the space's tabular benchmark)")
    what.add_argument("--dataset", default=None,
                      help="nb201: cifar10 (default), cifar100 or imagenet16-120; train: digits (default), "
                           "mnist5k, cifar10 or imagefolder")
    what.add_argument("--epochs", type=float, default=None, help="train: epochs per candidate")
    what.add_argument("--data-root", default=None, help="train: folder of cifar10 batches or an image folder")
    what.add_argument("--fidelity", type=int, default=None, help="nb201: reward after 200 (default) or 12 epochs")
    what.add_argument("--noisy", action="store_true", default=None, help="nb201: reward of one sampled training seed")
    what.add_argument("--latency-device", default=None, help="nb201: latency column to report (default pixel3)")
    what.add_argument("--eval-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                      help="extra evaluator option (repeatable)")
    what.add_argument("--reward", default=None,
                      help="metric the agent maximises (default: the evaluator's, e.g. valid_acc)")
    what.add_argument("--seed", type=int, default=0)
    what.add_argument("--agent-config", type=json_object, default={}, metavar="JSON",
                      help='agent options as a JSON object, e.g. \'{"population_size": 20}\'')
    what.add_argument("--set", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                      help="one agent option (repeatable)")
    what.add_argument("--controller", default=None, help="controller of reinforce/ppo: factorized or lstm")
    what.add_argument("--algo", default=None, choices=("ppo", "reinforce"),
                      help="enas: controller update, ppo (clipped, several epochs per batch; default) or reinforce")
    what.add_argument("--reuse-repeats", action="store_true",
                      help="answer a candidate the study already evaluated from the store, without spending budget")
    p.add_argument("--name", default=None, help="study name (default SPACE-AGENT-DATASET-SEED)")
    p.add_argument("--init-from", default=None, metavar="STUDY",
                   help="start the agent from another study's agent (same space and agent, same storage)")
    p.add_argument("--trials", type=int, default=None, help="number of trials (default 100 without a budget)")
    p.add_argument("--budget-seconds", type=float, default=None,
                   help="stop once this much (simulated) evaluation time is spent, e.g. 20000")
    p.add_argument("--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY,
                   help=f"agent checkpoint period in trials (default {DEFAULT_CHECKPOINT_EVERY}; 0: none)")
    add_run_options(p)
    add_storage(p)
    p.set_defaults(run=run)


def evaluator_choice(args: argparse.Namespace, space: Any) -> tuple[str, dict[str, Any]]:
    """The evaluator's name and options from the flags (a flag the evaluator does not take is an error)."""
    from rlnas.evaluators import EVALUATORS
    from rlnas.registry import accepted_options

    name = args.evaluator or ("nb201" if args.space == "nb201" else None)
    if name is None:
        raise ConfigError(f"space {args.space!r} has no tabular benchmark: choose one with --evaluator (e.g. train)")
    accepted = accepted_options(EVALUATORS.get(name)) or []
    options: dict[str, Any] = {"space": space} if "space" in accepted else {}
    for flag in EVALUATOR_FLAGS:
        value = getattr(args, flag)
        if value is None:
            continue
        if flag not in accepted:
            raise ConfigError(f"--{flag.replace('_', '-')} does not apply to evaluator {name!r}")
        options[flag] = value
    return name, options | dict(args.eval_option)


def agent_config(args: argparse.Namespace) -> dict[str, Any]:
    """Agent options from ``--agent-config``, ``--set``, ``--controller`` and ``--algo``."""
    config = dict(args.agent_config) | dict(args.set)
    if args.controller is not None:
        config["controller"] = args.controller
    if args.algo is not None:
        config["algo"] = args.algo
    return config


def run(args: argparse.Namespace, console: Console) -> int:
    """Build the study (checking everything before anything is stored) and run it."""
    from rlnas.evaluators import build_evaluator
    from rlnas.study import create_study, load_study, resolve_space
    from rlnas.study.transfer import check_transfer_source

    check_limits(args.trials, args.budget_seconds)
    if args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    options = run_options(args)
    trials = args.trials if args.trials is not None or args.budget_seconds is not None else 100
    space = resolve_space(args.space)  # an unknown space: one line, before anything else
    evaluator_name, evaluator_options = evaluator_choice(args, space)
    evaluator = build_evaluator({"name": evaluator_name, **evaluator_options}, threads=args.threads,
                                device=args.device)
    dataset = evaluator.spec().get("dataset", evaluator_name) if hasattr(evaluator, "spec") else evaluator_name
    name = args.name or f"{args.space}-{args.agent}-{dataset}-{args.seed}"
    source = None
    if args.init_from is not None:
        source = load_study(args.init_from, args.storage)
        check_transfer_source(source.record, space, args.agent)
    study = create_study(space=space, agent=args.agent, agent_config=agent_config(args), evaluator=evaluator,
                         reward=args.reward, seed=args.seed, name=name, storage=args.storage,
                         checkpoint_every=args.checkpoint_every, load_if_exists=True,
                         reuse_repeats=args.reuse_repeats, device=args.device)
    if source is not None and study.settings.get("init_from") != source.name:
        if study.n_finished:
            raise ConfigError(f"study {name!r} has already started: --init-from applies only to a new study")
        study.init_from(source)
    return run_and_report(study, trials, args.budget_seconds, options, console)
