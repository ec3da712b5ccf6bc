"""``rlnas retrain``: train a study's answers from scratch with the ``train`` evaluator.

A weight-sharing study (TuNAS, ENAS) answers with its controller's most likely architecture
and, with ``--samples N``, the best of N architectures sampled from its final controller by
shared-weight validation accuracy; any other study with its best trial (or ``--trial``).
Each answer is trained on the study's data set, built as the search built it; ``--output``
writes the architectures (as ``rlnas export --arch`` does) with both measurements as JSON.
"""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import add_storage, assignment, fmt, literal
from rlnas.errors import ConfigError


def add_parser(commands: Any) -> None:
    """Register ``retrain``."""
    p = commands.add_parser("retrain", help="train a study's answers from scratch (train evaluator)")
    p.add_argument("name")
    p.add_argument("--samples", type=int, default=0,
                   help="weight-sharing studies: also rank N architectures sampled from the final controller "
                        "by shared-weight validation accuracy and retrain the best (default 0)")
    p.add_argument("--top", type=int, default=1, help="how many of the ranked sampled architectures to retrain")
    p.add_argument("--trial", type=int, default=None, help="retrain this trial instead (default: the answers)")
    p.add_argument("--epochs", type=float, default=10, help="training epochs (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the training (default 0)")
    p.add_argument("--eval-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                   help="train evaluator option, e.g. lr=0.1 or model_kwargs='{\"channels\": 16}' (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--output", default=None, metavar="FILE", help="also write the answers and results as JSON")
    p.add_argument("--force", action="store_true", help="replace an existing --output file (never a database)")
    add_storage(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """Choose the answers, train each from scratch, print (and write) the results."""
    from rlnas.cli.export import check_output, write_text
    from rlnas.export import export_architecture_json
    from rlnas.jsonsafe import strict_json_text
    from rlnas.retrain import retrain, retrain_options, search_answers
    from rlnas.study import load_study

    if args.top < 1:
        raise ConfigError(f"--top must be a positive number, got {args.top}")
    if not args.epochs > 0:
        raise ConfigError(f"--epochs must be positive, got {args.epochs}")
    if args.output is not None:
        check_output(args.output, args.force)  # before hours of training, not after
    study = load_study(args.name, args.storage, threads=args.threads, device=args.device)
    answers = search_answers(study, args.samples, args.trial)
    chosen = [a for a in answers if a.source != "sampled"] + [a for a in answers if a.source == "sampled"][:args.top]
    options = retrain_options(study, args.epochs, dict(args.eval_option))
    title = f"Retrained answers of study {study.name!r} ({args.epochs:g} epochs, seed {args.seed})"
    table = Table(title=literal(title))
    for column in ("answer", "architecture", "search", "valid_acc", "test_acc", "params_m", "train_time_s"):
        table.add_column(column, overflow="fold")
    results = []
    for answer in chosen:
        measured = retrain(study.space, answer.candidate, options, args.seed, args.threads, args.device)
        search = ", ".join(f"{k} {fmt(v, 2)}" for k, v in answer.metrics.items())
        table.add_row(answer.source, literal(answer.key), literal(search),
                      *(fmt(measured.metrics.get(k), 3 if k == "params_m" else 2)
                        for k in ("valid_acc", "test_acc", "params_m", "train_time_s")))
        architecture = export_architecture_json(study.space, answer.candidate)
        results.append({"answer": answer.source, "architecture": architecture, "search_metrics": answer.metrics,
                        "retrained": dict(measured.metrics)})
    console.print(table)
    if args.output is not None:
        data = {"study": study.name, "retrain_options": options, "seed": args.seed, "results": results}
        write_text(args.output, strict_json_text(data, indent=2) + "\n")
        console.print(literal(f"wrote {len(results)} retrained answers to {args.output}"))
    return 0
