"""``rlnas search``: start a search (or continue one with the same definition)."""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console

from rlnas.cli._common import (
    add_run_options,
    add_storage,
    assignment,
    check_limits,
    json_object,
    run_options,
)
from rlnas.cli.summary import run_and_report
from rlnas.errors import ConfigError
from rlnas.rewards import create_reward
from rlnas.study.lease import LeaseLost

COST_REWARDS = ("abs", "soft", "hard")
"""``--reward`` values that trade quality against ``--cost`` relative to ``--target``."""
COST_METRICS = {"latency": "latency_ms", "flops": "flops_m", "params": "params_m"}
"""The metric each ``--cost`` is reported under."""
DEFAULT_BETA = {"abs": -7.0, "soft": -0.07, "hard": -0.07}
"""TuNAS's / MnasNet's beta; abs scales with the quality metric (-0.07 on [0, 1] is -7 on percent)."""

EVALUATOR_FLAGS = ("dataset", "epochs", "data_root", "fidelity", "noisy", "latency_device")
"""Flags that become evaluator options when given (each only for evaluators that take it)."""


def add_parser(commands: Any) -> None:
    """Register ``search`` and its options."""
    from rlnas.agents import list_agents
    from rlnas.evaluators import list_evaluators
    from rlnas.spaces import list_spaces
    from rlnas.study import DEFAULT_CHECKPOINT_EVERY

    p = commands.add_parser("search", help="start (or continue) a search",
                            description="Spaces and their evaluators: rlnas spaces. Agents and every agent option "
                                        "with its default and meaning: rlnas agents.")
    what = p.add_argument_group("what to search (the study's stored definition)")
    what.add_argument("--space", default="nb201", help=f"search space: {', '.join(list_spaces())} (default nb201)")
    what.add_argument("--agent", default="l2nas", help=f"search agent: {', '.join(list_agents())} (default l2nas; "
                                                      "options: rlnas agents NAME)")
    what.add_argument("--evaluator", default=None, help=f"evaluator: {', '.join(list_evaluators())} "
                                                        "(default: the space's tabular benchmark)")
    what.add_argument("--dataset", default=None,
                      help="nb201: cifar10 (default), cifar100 or imagenet16-120; nbgraph: cora (default), arxiv, "
                           "citeseer, computers, cs, photo, physics, proteins, pubmed; train: digits (default), "
                           "mnist5k, cifar10 or imagefolder; shared, supernet, optimizer: mnist5k (default), "
                           "digits, cifar10 or imagefolder")
    what.add_argument("--epochs", type=float, default=None, help="train: epochs per candidate")
    what.add_argument("--data-root", default=None, help="train: folder of cifar10 batches or an image folder")
    what.add_argument("--fidelity", type=int, default=None, help="nb201: reward after 200 (default) or 12 epochs")
    what.add_argument("--noisy", action="store_true", default=None, help="nb201: reward of one sampled training seed")
    what.add_argument("--latency-device", default=None, help="nb201: latency column to report (default pixel3)")
    what.add_argument("--eval-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                      help="extra evaluator option (repeatable)")
    what.add_argument("--reward", default=None,
                      help="metric the agent maximises (default: the evaluator's, e.g. valid_acc), or a "
                           "cost-aware reward: abs (TuNAS q + beta*|c/T-1|), soft (q*(c/T)^beta), hard "
                           "(q*min((c/T)^beta, 1)) with --target and --beta")
    what.add_argument("--target", type=float, default=None,
                      help="abs/soft/hard: cost target T in the cost's unit (ms, MFLOPs, M params)")
    what.add_argument("--beta", type=float, default=None,
                      help=f"abs/soft/hard: beta < 0 (default {DEFAULT_BETA['abs']:g} for abs on a percent "
                           f"quality, {DEFAULT_BETA['soft']:g} for soft/hard)")
    what.add_argument("--cost", default=None, choices=("latency", "flops", "params"),
                      help="abs/soft/hard: the cost (default latency; supernet: latency lookup table, "
                           "MFLOPs or M params of the deployable network)")
    what.add_argument("--seed", type=int, default=0,
                      help="seed of the agent and of every evaluation (default 0)")
    what.add_argument("--agent-config", type=json_object, default={}, metavar="JSON",
                      help='agent options as a JSON object, e.g. \'{"population_size": 20}\'')
    what.add_argument("--set", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                      help="one agent option (repeatable)")
    what.add_argument("--controller", default=None, help="controller of reinforce/ppo: factorized or lstm")
    what.add_argument("--algo", default=None, choices=("ppo", "reinforce"),
                      help="enas: controller update, ppo (clipped, several epochs per batch; default) or reinforce")
    what.add_argument("--reuse-repeats", action="store_true",
                      help="answer a candidate the study already evaluated (or the same network: NAS-Bench-Graph's "
                           "equivalent cells, layers skipped) from the store, without spending budget")
    p.add_argument("--name", default=None,
                   help="study name (default SPACE-AGENT-DATASET-SEED, plus a short hash of the other options "
                        "when any differs from its default, so differently configured searches never collide)")
    p.add_argument("--keep-weights", default="all", metavar="K|all|none",
                   help="train: keep the trained weights of every trial (all, the default), of the best K by "
                        "valid_acc, or none; they go next to a SQLite database (runs.db -> runs.db-weights/NAME/)")
    p.add_argument("--init-from", default=None, metavar="STUDY",
                   help="start the agent from another study's agent (same space and agent, same storage)")
    p.add_argument("--trials", type=int, default=None, help="number of trials (default 100 without a budget)")
    p.add_argument("--budget-seconds", type=float, default=None,
                   help="stop once this much (simulated) evaluation time is spent, e.g. 20000")
    p.add_argument("--checkpoint-every", type=int, default=None,
                   help=f"agent checkpoint period in trials (default {DEFAULT_CHECKPOINT_EVERY}; 0: none)")
    add_run_options(p)
    add_storage(p)
    p.set_defaults(run=run)


TABULAR_EVALUATORS = {"nb201": "nb201", "nbgraph": "nbgraph", "nbgraph_proteins": "nbgraph",
                      "optimizer_rules": "optimizer"}
"""The evaluator a space gets when ``--evaluator`` is not given."""


def evaluator_choice(args: argparse.Namespace, space: Any) -> tuple[str, dict[str, Any]]:
    """The evaluator's name and options from the flags (a flag the evaluator does not take is an error)."""
    from rlnas.evaluators import EVALUATORS
    from rlnas.registry import accepted_options

    name = args.evaluator or TABULAR_EVALUATORS.get(args.space)
    if name is None:
        raise ConfigError(f"space {args.space!r} has no tabular benchmark: choose one with --evaluator (e.g. train)")
    if name == "nbgraph":
        dataset = dict(args.eval_option).get("dataset", args.dataset)
        dataset = dataset.lower() if isinstance(dataset, str) else dataset  # as the evaluator reads it: Cora is cora
        if dataset is None and args.space == "nbgraph_proteins":
            args.dataset = dataset = "proteins"
        wanted = "nbgraph_proteins" if dataset == "proteins" else "nbgraph"
        if args.space != wanted:
            raise ConfigError(f"the nbgraph evaluator on {dataset or 'cora'} needs --space {wanted}")
    accepted = accepted_options(EVALUATORS.get(name)) or []
    options: dict[str, Any] = {"space": space} if "space" in accepted else {}
    check_run_options_not_evaluator_options(dict(args.eval_option))
    if args.epochs is not None and "steps" in dict(args.eval_option):  # steps won: the epochs were ignored
        raise ConfigError("--epochs and --eval-option steps both set how long each candidate trains: give one")
    for flag in (*EVALUATOR_FLAGS, "cost"):
        if getattr(args, flag) is not None and flag in dict(args.eval_option):
            raise ConfigError(f"--{flag.replace('_', '-')} and --eval-option {flag} both set the evaluator's {flag}: "
                              "give one")
    for flag in EVALUATOR_FLAGS:
        value = getattr(args, flag)
        if value is None:
            continue
        if flag not in accepted:
            raise ConfigError(f"--{flag.replace('_', '-')} does not apply to evaluator {name!r}")
        options[flag] = value
    if args.cost is not None and "cost" in accepted:  # the evaluator computes that cost (supernet)
        options["cost"] = args.cost
    return name, options | dict(args.eval_option)


def within_epochs(trials: int | None, evaluator: Any) -> int | None:
    """``trials`` of a weight-sharing search with ``evaluator``, at most the trials its epochs record
    (with a warning saying so: the search ends there)."""
    from rlnas.study._weight_sharing import planned_trials_of

    planned = planned_trials_of(evaluator)
    if trials is not None and trials < planned:
        warnings.warn(f"--trials {trials} ends this weight-sharing search after {trials} of the {planned} trials its "
                      "epochs record: its answer is the policy at that point of the training, not at its end "
                      "(--epochs sets the length of the search)", stacklevel=1)
    if trials is None or trials <= planned:
        return trials
    warnings.warn(f"this weight-sharing search records {planned} trial(s) over its epochs (more epochs record "
                  f"more): it ends there, short of --trials {trials}", stacklevel=1)
    return planned


def began_from(storage: str, name: str, source: str) -> bool:
    """Whether study ``name`` exists and began from study ``source``: the same command run again needs the
    source no more (its transferred state is the study's first checkpoint), so it may be gone."""
    from rlnas.errors import RlnasError
    from rlnas.store import open_store

    try:
        return open_store(storage, create=False).get_study(name).settings.get("init_from") == source
    except RlnasError:  # no database yet, no such study
        return False


def check_run_options_not_evaluator_options(eval_options: dict[str, Any]) -> None:
    """Refuse ``--eval-option device`` / ``threads``: the run options ``--device`` / ``--threads`` set them (and
    would silently override them)."""
    for flag in ("device", "threads"):
        if flag in eval_options:
            raise ConfigError(f"--eval-option {flag}: evaluations run with --{flag}, a run option (resume may change "
                              f"it); use --{flag}")


def check_eval_options_used(eval_options: dict[str, Any], shares_weights: bool) -> None:
    """Refuse ``--eval-option`` settings a search would silently override (and yet name a new study by)."""
    if "seed" in eval_options and not shares_weights:
        raise ConfigError("--eval-option seed: a search seeds each trial's evaluation from --seed and the trial's "
                          "slot, so the evaluator's own seed would change nothing; use --seed")
    if "schedule" in eval_options and "steps" in eval_options:
        raise ConfigError("--eval-option steps with schedule: the schedule sets every trial's steps from trial 0, "
                          "so steps would change nothing; put the steps in the schedule")


def reward_spec(args: argparse.Namespace, evaluator: Any) -> str | dict[str, Any] | None:
    """``--reward`` as a metric name, or the spec of a cost-aware reward from ``--target/--beta/--cost``."""
    if args.reward not in COST_REWARDS:
        if args.cost is not None and "cost" not in (evaluator.spec() or {}):
            raise ConfigError(f"--cost applies to --reward {'/'.join(COST_REWARDS)} (or to an evaluator that "
                              "computes costs, such as supernet)")
        if args.target is not None or args.beta is not None:
            shown = repr(args.reward) if args.reward is not None else "the evaluator's metric (the default)"
            raise ConfigError(f"--target and --beta apply to --reward {'/'.join(COST_REWARDS)}, not {shown}")
        return args.reward
    if args.target is None:
        raise ConfigError(f"--reward {args.reward} needs --target (the cost to aim at)")
    beta = DEFAULT_BETA[args.reward] if args.beta is None else args.beta
    computed = (evaluator.spec() or {}).get("cost")  # --eval-option cost=flops: the reward's cost too
    cost = args.cost or (computed if computed in COST_METRICS else "latency")
    quality = getattr(evaluator, "default_reward", "valid_acc")
    spec = {"name": args.reward, "metric": quality, "cost": COST_METRICS[cost], "target": args.target, "beta": beta}
    create_reward(spec)  # beta's sign and the target's: one line, before anything is stored
    if callable(getattr(evaluator, "check_reward", None)):
        evaluator.check_reward(args.reward, beta=beta, target=args.target)
    return spec


def agent_config(args: argparse.Namespace) -> dict[str, Any]:
    """Agent options from ``--agent-config``, ``--set`` (which wins over it), ``--controller`` and ``--algo``."""
    config = dict(args.agent_config) | dict(args.set)
    for flag in ("controller", "algo"):
        if getattr(args, flag) is not None:
            if flag in config:
                raise ConfigError(f"--{flag} and {flag} in --set / --agent-config both set the agent's {flag}: "
                                  "give one")
            config[flag] = getattr(args, flag)
    return config


def with_failed_reward(config: dict[str, Any], agent: str, evaluator: Any) -> dict[str, Any]:
    """Agents with a ``fail_reward`` option (REINFORCE, PPO) learn a failed trial as the evaluator's
    ``failed_reward`` (the optimizer evaluator's: 0, the lowest accuracy) unless the user set one."""
    import dataclasses

    from rlnas.agents import agent_class

    failed = getattr(evaluator, "failed_reward", None)
    if failed is None or "fail_reward" in config:
        return config
    if "fail_reward" not in {f.name for f in dataclasses.fields(agent_class(agent).Config)}:
        return config
    return config | {"fail_reward": failed}


def default_name(args: argparse.Namespace, evaluator_name: str, evaluator_options: dict[str, Any],
                 spec: dict[str, Any]) -> str:
    """``SPACE-AGENT-DATASET-SEED``, plus ``-`` and 6 hex digits of the options that differ from the
    defaults (agent config, evaluator options, reward, repeats, kept weights), so that two different searches
    never get the same default name. ``spec`` is that of the evaluator built from ``evaluator_options``."""
    import hashlib

    from rlnas.agents import agent_class
    from rlnas.evaluators import build_evaluator

    config = agent_class(args.agent).Config
    wanted, default = config.from_dict(agent_config(args)).to_dict(), config.from_dict({}).to_dict()
    base_options = {k: v for k, v in evaluator_options.items() if k in ("space", "dataset")}
    base = spec if base_options == evaluator_options else build_evaluator({"name": evaluator_name,
                                                                            **base_options}).spec()
    differences = {"agent": {k: v for k, v in wanted.items() if default.get(k) != v},
                   "evaluator": {k: v for k, v in spec.items() if base.get(k) != v},
                   "reward": args.reward if args.reward != "valid_acc" else None,
                   "reward_options": {k: v for k, v in (("target", args.target), ("beta", args.beta),
                                                        ("cost", args.cost)) if v is not None} or None,
                   "init_from": args.init_from,
                   "reuse_repeats": args.reuse_repeats or None,
                   # what the train evaluator keeps is stored with it: another --keep-weights is another study
                   "keep_weights": str(args.keep_weights).lower() if str(args.keep_weights).lower() != "all" else None}
    dataset = spec.get("dataset", evaluator_name)
    name = f"{args.space}-{args.agent}-{dataset}-{args.seed}"
    if any(differences.values()):
        text = json.dumps(differences, sort_keys=True, default=str)
        name += "-" + hashlib.sha256(text.encode()).hexdigest()[:6]
    return name


def weights_options(args: argparse.Namespace, evaluator_name: str, options: dict[str, Any],
                    name: str) -> dict[str, Any]:
    """``weights_dir`` / ``keep_weights`` of a train evaluator from ``--keep-weights`` (``{}`` for other evaluators)."""
    from rlnas.evaluators import EVALUATORS
    from rlnas.registry import accepted_options

    if "weights_dir" not in (accepted_options(EVALUATORS.get(evaluator_name)) or []):
        if args.keep_weights != "all":
            raise ConfigError(f"--keep-weights applies to the train evaluator, not {evaluator_name!r}")
        return {}
    keep = str(args.keep_weights).lower()
    if keep not in ("all", "none") and not (keep.isdigit() and int(keep) > 0):
        raise ConfigError(f"--keep-weights must be all, none or a positive number, got {args.keep_weights!r}")
    if "weights_dir" in options:  # the folder is the user's: --keep-weights only prunes it
        if keep == "none" or (keep != "all" and "keep_weights" in options):
            raise ConfigError(f"--keep-weights {args.keep_weights} contradicts --eval-option weights_dir"
                              f"{'/keep_weights' if keep != 'none' else ''}: give one of them")
        return {} if keep == "all" else {"keep_weights": int(keep)}
    if keep == "none":
        return {}
    return {"weights_dir": study_weights_dir(args.storage, name),
            "keep_weights": None if keep == "all" else int(keep)}


def study_weights_dir(storage: str, name: str) -> str:
    """The weights folder of study ``name``: the one it stored if it exists, else a free one for a new study.

    Free: :func:`default_weights_dir`, with ``-2``, ``-3``, ... appended while that folder belongs to another
    study of the database (one renamed away from ``name`` keeps its folder) or already holds weight files
    (of a deleted database, or of another database whose studies' folders go to the same place): a search
    prunes its folder to its best ``keep_weights``, so it must hold this study's files alone.
    """
    from rlnas.evaluators.weights import ranked_files

    stored = _stored_weights_dirs(storage)
    if stored.get(name):
        return stored[name]  # type: ignore[return-value]
    base, taken = default_weights_dir(storage, name), set(stored.values())
    parent, leaf = os.path.split(base)
    folder, n = base, 1
    while folder in taken or (os.path.isdir(folder) and ranked_files(folder)):
        n += 1
        suffix = f"-{n}"  # a folder name (ASCII: weights_folder_name) has at most 255 bytes, the suffix too
        folder = os.path.join(parent, leaf[:255 - len(suffix)] + suffix)
    return folder


def _stored_weights_dirs(storage: str) -> dict[str, str | None]:
    """``{study name: weights_dir}`` of the studies already in ``storage`` (none when it holds no database yet)."""
    from rlnas.errors import StorageError
    from rlnas.store import open_store
    from rlnas.store.base import readable_studies

    try:
        store = open_store(storage, create=False)
    except StorageError:  # no database yet; a URL that cannot be used is reported when the study is made
        return {}
    try:
        # a damaged study's folder cannot be known; `rlnas rm` deletes such a study and leaves its files
        return {r.name: (r.evaluator or {}).get("weights_dir") for r in readable_studies(store)[0]}
    finally:
        store.close()


def weights_folder_name(name: str) -> str:
    """A study's weights folder: its name where that is a plain file name, else the name with every
    character outside ``A-Z a-z 0-9 . _ -`` replaced by ``_`` (cut to 200 characters: a file name has at
    most 255 bytes) and a hash of the name appended, so that a name like ``../x`` or ``a/b`` stays inside
    the weights folder and two names never share one."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    if safe == name:  # at most 255 ASCII characters (a study name's limit)
        return name
    return f"{safe[:200] or 'study'}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def default_weights_dir(storage: str, name: str) -> str:
    """``<database file>-weights/<name>`` next to a SQLite file, else ``rlnas-weights/<name>`` in the working
    folder (``<name>`` made a plain file name by :func:`weights_folder_name`), as an absolute path: the
    study stores it, and commands run from another folder (export, retrain, rm) must find it."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(storage)
        database = url.database if url.get_backend_name() == "sqlite" else None
    except Exception:  # noqa: BLE001 - not a URL: the store reports it when it is opened
        database = None
    folder = f"{database}-weights" if database and database != ":memory:" else "rlnas-weights"
    return str(Path(os.path.abspath(folder)) / weights_folder_name(name))


def check_evaluator(space: Any, evaluator_name: str, evaluator: Any) -> str | None:
    """Before anything is stored: the evaluator measures this space and its data load. Returns a warning
    when a mobile network shrinks the images to a single pixel long before its last layer (given once
    every check passed: a search refused for another reason says only why), else ``None``."""
    space_name = space.name
    if (space_name == "optimizer_rules") != (evaluator_name == "optimizer"):  # update rules vs networks
        raise ConfigError(f"space 'optimizer_rules' holds update rules, which only --evaluator optimizer measures "
                          f"(got space {space_name!r} and evaluator {evaluator_name!r})")
    measured = getattr(evaluator, "space", None)
    if measured is not None and getattr(measured, "fingerprint", None) != space.fingerprint:
        raise ConfigError(f"evaluator {evaluator_name!r} measures space {measured.name!r}, not {space_name!r}: "
                          f"choose --evaluator train (or --space {measured.name})")
    if not isinstance(getattr(type(evaluator), "data", None), property):
        return None
    data = evaluator.data  # a missing or unreadable data set stops here, with its one-line reason
    if hasattr(space, "arch") and "smallest" in space.known():
        from rlnas.reports.arch import collapse_point, mobile_blocks

        size = int(data.input_shape[-1])
        blocks = mobile_blocks(space, space.known()["smallest"], int(data.input_shape[0]), resolution=size)
        at = collapse_point(blocks)
        if at is not None:
            return (f"on {size}×{size} images the {space_name} networks shrink the feature map to 1×1 before "
                    f"layer {at} of {len(blocks) - 1}, so most layers see one pixel and accuracy stays low; use "
                    "larger images (e.g. --dataset mnist5k) or more epochs")
    return None


def run(args: argparse.Namespace, console: Console) -> int:
    """Build the study (checking everything before anything is stored) and run it."""
    from rlnas.agents import agent_class
    from rlnas.agents.base import WeightSharingAgent
    from rlnas.evaluators import build_evaluator
    from rlnas.study import create_study, load_study, resolve_space
    from rlnas.study._weight_sharing import check_weight_sharing_run, planned_trials_of
    from rlnas.study.transfer import check_transfer, check_transfer_source

    check_limits(args.trials, args.budget_seconds)
    if args.checkpoint_every is not None and args.checkpoint_every < 0:
        raise ConfigError(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    options = run_options(args)
    trials = args.trials if args.trials is not None or args.budget_seconds is not None else 100
    space = resolve_space(args.space)  # an unknown space: one line, before anything else
    evaluator_name, evaluator_options = evaluator_choice(args, space)
    evaluator = build_evaluator({"name": evaluator_name, **evaluator_options}, threads=args.threads,
                                device=args.device)
    name = args.name  # an empty --name '' is refused by create_study, not replaced by the default
    if name is None:
        name = default_name(args, evaluator_name, evaluator_options, evaluator.spec())
    weights = weights_options(args, evaluator_name, evaluator_options, name)
    if weights:  # the weights folder is named after the study
        evaluator = build_evaluator({"name": evaluator_name, **evaluator_options, **weights}, threads=args.threads,
                                    device=args.device)
    small_images = check_evaluator(space, evaluator_name, evaluator)
    source = None
    if args.init_from is not None and not began_from(args.storage, name, args.init_from):
        source = load_study(args.init_from, args.storage)
        check_transfer_source(source.record, space, args.agent)  # before the evaluator is asked for anything
    reward = reward_spec(args, evaluator)
    shares_weights = issubclass(agent_class(args.agent), WeightSharingAgent)
    check_eval_options_used(dict(args.eval_option), shares_weights)
    if shares_weights:  # before the default number of trials is read from the evaluator
        check_weight_sharing_run(args.agent, evaluator, options, reuse_repeats=args.reuse_repeats,
                                 checkpoint_every=args.checkpoint_every)
        if args.trials is not None:
            trials = within_epochs(args.trials, evaluator)
        elif args.budget_seconds is None:
            trials = planned_trials_of(evaluator)  # a one-shot search runs for the evaluator's epochs
    config = with_failed_reward(agent_config(args), args.agent, evaluator)
    if source is not None:  # what init_from will load, checked before the study is stored
        check_transfer(source, space, args.agent, config, args.seed, args.device)
    study = create_study(space=space, agent=args.agent, agent_config=config, evaluator=evaluator,
                         reward=reward, seed=args.seed, name=name, storage=args.storage,
                         checkpoint_every=args.checkpoint_every, load_if_exists=True,
                         reuse_repeats=args.reuse_repeats, device=args.device, n_trials=trials,
                         budget_seconds=args.budget_seconds)
    if small_images:
        warnings.warn(small_images, stacklevel=1)
    if source is not None and study.settings.get("init_from") != source.name:
        if study.n_finished:
            raise ConfigError(f"study {name!r} has already started: --init-from applies only to a new study")
        study.init_from(source)
    try:
        return run_and_report(study, trials, args.budget_seconds, options, console)
    except LeaseLost:
        raise  # the study is another driver's now: this process writes nothing
    except Exception:  # a search stopped before its first trial leaves no study
        with contextlib.suppress(Exception):  # what stopped the search is what the user hears
            forget_unstarted_study(study)
        raise


def forget_unstarted_study(study: Any) -> None:
    """Remove the study that a search stopped before its first trial stored, if this command created it and
    still drives it (the database file stays: another process may be using it by now)."""
    if not study.created_now or study.store.trials(study.record.id):
        return
    study.store.delete_study(study.name)
