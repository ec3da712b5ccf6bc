"""``rlnas retrain``: train a study's answers from scratch, each stored as a study of its own.

The answers (:func:`rlnas.retrain.search_answers`): a weight-sharing study (TuNAS, ENAS) answers
with its controller's most likely architecture and, with ``--samples N``, the best ``--top K``
of N architectures sampled from its final controller by shared-weight validation accuracy; any
other study with its best trial (or ``--trial``). Each answer is trained with the ``train``
evaluator on the source's data set, built as the search built it, as a one-trial study of the
``fixed`` agent (the first answer ``NAME-retrain-SEED`` or ``--as``, the sampled ones
``...-sampled-K``), so ``show``, ``best`` and ``export`` work on it; running the command again
reports the stored results instead of training again. ``--output`` writes the architectures with
both measurements as JSON.
"""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import EXIT_INTERRUPTED, CommandFailed, add_storage, assignment, fmt, literal
from rlnas.cli.summary import failure_said_as_error, report_interrupted
from rlnas.errors import ConfigError
from rlnas.trial import TrialState


def add_parser(commands: Any) -> None:
    """Register ``retrain``."""
    p = commands.add_parser("retrain", help="train a study's answers from scratch (each stored as a study)")
    p.add_argument("name", help="the study whose answers to train")
    p.add_argument("--samples", type=int, default=0,
                   help="weight-sharing studies: also rank N architectures sampled from the final controller "
                        "by shared-weight validation accuracy and retrain the best (default 0)")
    p.add_argument("--top", type=int, default=1,
                   help="how many of the ranked sampled architectures to retrain (default 1)")
    p.add_argument("--trial", type=int, default=None, help="retrain this trial instead (default: the answers)")
    p.add_argument("--epochs", type=float, default=10, help="training epochs (default 10)")
    p.add_argument("--lr", type=float, default=None, help="SGD learning rate (default the train evaluator's)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of each retrain study (default 0); its one trial trains with the seed the study "
                        "derives from it, as every study's trials do")
    p.add_argument("--as", dest="new_name", default=None, metavar="NAME",
                   help="name of the first answer's study (default NAME-retrain-SEED)")
    p.add_argument("--eval-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                   help="train evaluator option, e.g. augment=true or model_kwargs='{\"channels\": 16}' (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("-o", "--output", default=None, metavar="FILE", help="also write the answers and results as JSON")
    p.add_argument("--force", action="store_true", help="replace an existing --output file (never a database)")
    add_storage(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """Choose the answers, train each as a one-trial study, print (and write) the results."""
    from rlnas.cli.export import check_output, write_text
    from rlnas.evaluators import build_evaluator
    from rlnas.export import export_architecture_json
    from rlnas.jsonsafe import strict_json_text
    from rlnas.retrain import retrain_options, search_answers
    from rlnas.study import load_study

    if args.top < 1:
        raise ConfigError(f"--top must be a positive number, got {args.top}")
    if args.top > 1 and args.top > args.samples:
        raise ConfigError(f"--top {args.top} ranks sampled architectures: it needs --samples of at least {args.top} "
                          f"(got {args.samples})")
    if not args.epochs > 0:
        raise ConfigError(f"--epochs must be positive, got {args.epochs:g}")
    if args.lr is not None and not args.lr > 0:
        raise ConfigError(f"--lr must be positive, got {args.lr:g}")
    if args.lr is not None and "lr" in dict(args.eval_option):
        raise ConfigError("--lr and --eval-option lr both set the learning rate: give one")
    from rlnas.cli.search import check_run_options_not_evaluator_options

    check_run_options_not_evaluator_options(dict(args.eval_option))
    for option in ("epochs", "steps"):
        if option in dict(args.eval_option):
            raise ConfigError(f"--eval-option {option}: retrain trains for --epochs (default 10)")
    if args.output is not None:
        check_output(args.output, args.force)  # before hours of training, not after
    study = load_study(args.name, args.storage, threads=args.threads, device=args.device)
    if study.space.name == "optimizer_rules":
        raise ConfigError(f"retrain trains networks; study {study.name!r} searched update rules (train one "
                          f"with rlnas rule RULE --evaluate, export them with rlnas export {study.name} "
                          "--optimizer FILE.py)")
    answers = search_answers(study, args.samples, args.trial)
    chosen = [a for a in answers if a.source != "sampled"] + [a for a in answers if a.source == "sampled"][:args.top]
    overrides = ({"lr": args.lr} if args.lr is not None else {}) | dict(args.eval_option)
    options = retrain_options(study, args.epochs, overrides)
    base = args.new_name if args.new_name is not None else f"{study.name}-retrain-{args.seed}"
    if "weights_dir" not in overrides:  # kept, as a search keeps them: export NAME --onnx carries them
        from rlnas.cli.search import default_weights_dir

        options["weights_dir"] = default_weights_dir(args.storage, base)
    evaluator = build_evaluator({"name": "train", "space": study.space, **options},
                                threads=args.threads, device=args.device)  # one for every answer
    evaluator.prepare()  # the data loads and the network runs on it, before any study is stored
    title = f"Retrained answers of study {study.name!r} ({args.epochs:g} epochs, seed {args.seed})"
    table = Table(title=literal(title))
    for column in ("answer", "study", "architecture", "search", "valid_acc", "test_acc", "params_m", "train_time_s"):
        table.add_column(column, overflow="fold")
    results = []
    for index, answer in enumerate(chosen):
        name = base if index == 0 else f"{base}-sampled-{index}"
        try:
            metrics = _train_as_study(study, answer, evaluator, name, args, console)
        except KeyboardInterrupt:
            report_interrupted(f"run the same rlnas retrain again to go on ({index} of {len(chosen)} answers done)")
            return EXIT_INTERRUPTED
        search = ", ".join(f"{k} {fmt(v, 2)}" for k, v in answer.metrics.items())
        table.add_row(answer.source, literal(name), literal(answer.key), literal(search),
                      *(fmt(metrics.get(k), 3 if k == "params_m" else 2)
                        for k in ("valid_acc", "test_acc", "params_m", "train_time_s")))
        results.append({"answer": answer.source, "study": name,
                        "architecture": export_architecture_json(study.space, answer.candidate),
                        "search_metrics": answer.metrics, "retrained": metrics})
    console.print(table)
    if args.output is not None:
        data = {"study": study.name, "retrain_options": options, "seed": args.seed, "results": results}
        write_text(args.output, strict_json_text(data, indent=2) + "\n")
        console.print(literal(f"wrote {len(results)} retrained answers to {args.output}"))
    return 0


def _train_as_study(source: Any, answer: Any, evaluator: Any, name: str, args: argparse.Namespace,
                    console: Console) -> dict[str, float]:
    """Train ``answer`` with ``evaluator`` as the one trial of study ``name`` (or read it back); its metrics."""
    from rlnas.study import create_study
    from rlnas.study.spec import RunOptions

    study = create_study(space=source.space, agent="fixed", agent_config={"key": answer.key}, evaluator=evaluator,
                         reward="valid_acc", seed=args.seed, name=name, storage=args.storage, load_if_exists=True)
    origin = {"study": source.name, "answer": answer.source, "key": answer.key}
    study.save_settings(retrain_of=origin)
    if study.n_finished == 0:
        console.print(literal(f"training the {answer.source} answer of {source.name!r} ({answer.key}) "
                              f"as study {name!r}"))
        with failure_said_as_error():
            study.optimize(1, None, run=RunOptions(threads=args.threads, device=args.device))
    done = [t for t in study.trials if t.state is TrialState.COMPLETE]
    if not done:
        failed = [t.error for t in study.trials if t.error]
        raise CommandFailed(f"training the {answer.source} answer failed" + (f": {failed[-1]}" if failed else ""))
    return {k: float(v) for k, v in done[-1].metrics.items()}
