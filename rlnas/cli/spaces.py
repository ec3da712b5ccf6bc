"""``rlnas spaces``: the search spaces, their size and the evaluators that work with them."""
from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import literal, write_stdout


def add_parser(commands: Any) -> None:
    """Register ``spaces``."""
    p = commands.add_parser("spaces", help="list the search spaces (decisions, size, evaluators)")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(run=run)


def describe(name: str) -> dict[str, Any]:
    """Name, summary, decisions, size and evaluators of space ``name``."""
    from rlnas.cli.search import TABULAR_EVALUATORS
    from rlnas.spaces import BUILT_IN_MODEL_SPACES, SPACES, create_space
    from rlnas.spaces.mobilenet import MobileSpace

    space = create_space(name)
    doc = inspect.getdoc(SPACES.get(name)) or ""
    evaluators = [TABULAR_EVALUATORS[name]] if name in TABULAR_EVALUATORS else []
    models = sys.modules.get("rlnas.models")  # imported (torch and all) only by a plugin that registers a model
    if name in (models.MODELS if models is not None else BUILT_IN_MODEL_SPACES):
        evaluators.append("train")
    if name in ("enas_macro", "enas_micro"):  # the shared evaluator's ENAS supernets
        evaluators.append("shared")
    if isinstance(space, MobileSpace):  # TuNAS's supernet of the mobile spaces
        evaluators.append("supernet")
    summary = " ".join(doc.split("\n\n")[0].split())
    summary = re.sub(r":\w+:`~?([^`]*)`", r"\1", re.sub(r"``([^`]*)``", r"'\1'", summary))  # reST: plain text
    return {"name": name, "summary": summary, "decisions": len(space.decisions),
            "candidates": space.size, "evaluators": evaluators, "known": sorted(space.known())}


def run(args: argparse.Namespace, console: Console) -> int:
    """One row per space."""
    from rlnas.plugins import load_plugins
    from rlnas.spaces import list_spaces

    load_plugins()  # the installed packages' too: they are listed
    rows = [describe(n) for n in list_spaces()]
    if args.json:
        write_stdout(json.dumps(rows, indent=2) + "\n")
        return 0
    table = Table(title="Search spaces (rlnas search --space NAME)")
    for column in ("space", "decisions", "candidates", "evaluators", "named candidates", "what"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["name"], str(r["decisions"]), f"{r['candidates']:.3g}", literal("; ".join(r["evaluators"])),
                      literal(", ".join(r["known"]) or "-"), literal(r["summary"]))
    console.print(table)
    console.print("Evaluators: nb201 = the NAS-Bench-201 table (cifar10, cifar100, imagenet16-120); nbgraph = the "
                  "NAS-Bench-Graph table; optimizer = train a child network with each update rule; train = train "
                  "every candidate (digits, mnist5k, cifar10, imagefolder); shared = ENAS's shared weights; "
                  "supernet = TuNAS's one-shot supernet. The first one listed is the default. Agents: rlnas agents.")
    return 0
