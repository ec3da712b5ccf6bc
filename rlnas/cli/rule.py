"""``rlnas rule``: read an update rule (written or named), show it, its torch code, train with it, write it."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console
from rich.text import Text

from rlnas.checks import check_evaluation_seed
from rlnas.cli._common import CommandFailed, assignment, field_table, fmt, literal, write_output
from rlnas.errors import ConfigError


def add_parser(commands: Any) -> None:
    """Register ``rule``."""
    p = commands.add_parser("rule", help="check an update rule of the optimizer search; train with it or write it")
    p.add_argument("rule", help="a written rule, e.g. 'sign(g) * sign(m); exp(o1) * g', or a name "
                                "(adam, powersign, ...)")
    p.add_argument("--code", action="store_true", help="print the torch code the rule compiles to: the multi-tensor "
                                                        "update and the element-wise function of fused=True")
    p.add_argument("--evaluate", action="store_true",
                   help="train the optimizer evaluator's child network with the rule at every lr of its grid")
    p.add_argument("--eval-option", action="append", type=assignment, default=[], metavar="KEY=VALUE",
                   help="--evaluate: evaluator option, e.g. dataset=digits, network=mlp, steps=100 (repeatable)")
    p.add_argument("--seed", type=int, default=None,
                   help="--evaluate: seed of the child's weights and batches (default 0)")
    p.add_argument("--threads", type=int, default=None, help="--evaluate: torch threads")
    p.add_argument("-o", "--output", default=None, metavar="FILE.py",
                   help="write the rule as a Python module with a torch.optim.Optimizer class (needs only torch)")
    p.add_argument("--lr", type=float, default=None, help="--output: the class's default lr (default: the best "
                                                          "lr of --evaluate, else 1e-3)")
    p.add_argument("--force", action="store_true", help="--output: overwrite an existing file")
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """Parse the rule (a malformed or unknown one is a one-line error) and do what was asked."""
    from rlnas.optim.codegen import compile_source
    from rlnas.optim.rule import as_rule

    unused = [f"{flag} needs {needed}" for flag, given, needed, present in (
        ("--eval-option", bool(args.eval_option), "--evaluate", args.evaluate),
        ("--seed", args.seed is not None, "--evaluate", args.evaluate),
        ("--threads", args.threads is not None, "--evaluate", args.evaluate),
        ("--lr", args.lr is not None, "--output", args.output is not None),
        ("--force", args.force, "--output", args.output is not None)) if given and not present]
    if unused:  # an option that would be ignored: say so rather than do something else than was asked
        raise ConfigError("; ".join(unused))
    if any(key == "schedule" for key, _ in args.eval_option):
        raise ConfigError("schedule grows the training steps over a search's trials; one evaluation takes steps=N")
    rule = as_rule(args.rule)
    if args.output is not None:
        from rlnas.cli.export import check_output
        from rlnas.optim.export import is_module_file

        if not is_module_file(args.output):
            raise ConfigError(f"--output must name a .py file, got {args.output!r}")
        check_output(args.output, args.force)
    compiled = compile_source(rule)
    table = field_table("update rule: w <- w - lr * rule")
    table.add_row("rule", literal(str(rule)))
    table.add_row("iterations", str(len(rule)))
    table.add_row("running averages", ", ".join(compiled.state_names) or "none")
    table.add_row("random", "yes" if compiled.uses_random else "no")
    table.add_row("needs total_steps", "yes (decay operand)" if compiled.uses_decay else "no")
    best_lr = None
    if args.evaluate:
        best_lr = _evaluate(args, rule, table)
    module = None
    if args.output is not None:  # made (and checked) before anything is printed
        from rlnas.optim.export import FoundRule, optimizer_module_source

        lr = args.lr if args.lr is not None else best_lr if best_lr is not None else 1e-3
        module = optimizer_module_source([FoundRule(str(rule), lr)])
    console.print(table)
    if args.code:
        from rlnas.optim.fused import fused_source

        source = f"{compiled.source}\n# fused=True: one torch.compile-d loop per tensor\n{fused_source(rule).source}"
        console.print(Text(source), soft_wrap=True)  # generated from the parsed rule: no markup, no escapes
    if module is not None:
        path = write_output(args.output, module)
        console.print(literal(f"wrote NOSRule1 ({rule}, lr {lr:g}) to {path}"))
    return 0


def _evaluate(args: argparse.Namespace, rule: Any, table: Any) -> float | None:
    from rlnas.evaluators import build_evaluator
    from rlnas.evaluators.optimizer import RuleDiverged

    if "seed" in dict(args.eval_option):
        raise ConfigError("rlnas rule: the child's seed is --seed, not --eval-option seed=...")
    seed = check_evaluation_seed(0 if args.seed is None else args.seed, "--seed")
    evaluator = build_evaluator({"name": "optimizer", **dict(args.eval_option)}, threads=args.threads)
    try:
        measurement = evaluator.evaluate_rule(rule, seed=seed)
    except RuleDiverged as exc:  # the command ran and the rule failed: exit 1, as a search in which none completed
        raise CommandFailed(str(exc)) from None
    spec = evaluator.spec()
    table.add_row("child task", literal(f"{spec['network']} on {spec['dataset']}, {measurement.info['steps']} steps, "
                                        f"seed {seed}"))
    for row in measurement.info["per_lr"]:
        shown = fmt(row["valid_acc"], 2) if row["diverged"] is None else f"diverged ({row['diverged']})"
        table.add_row(f"valid_acc at lr {row['lr']:g}", literal(shown))
    for metric in ("valid_acc", "test_acc", "best_lr"):
        table.add_row(metric, fmt(measurement.metrics[metric], 4 if metric == "best_lr" else 2))
    return float(measurement.metrics["best_lr"])
