"""``rlnas agents``: every agent with its options, defaults and what they mean."""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
from typing import Any

from rich.console import Console
from rich.table import Table

from rlnas.cli._common import literal, write_stdout


def add_parser(commands: Any) -> None:
    """Register ``agents``."""
    p = commands.add_parser("agents", help="list the agents and their options (--agent-config / --set)")
    p.add_argument("names", nargs="*", metavar="AGENT", help="only these agents")
    p.add_argument("--json", action="store_true", help="print the options as JSON")
    p.set_defaults(run=run)


def field_docs(cls: type) -> dict[str, str]:
    """The one-line docstring under each dataclass field of ``cls`` and its bases (the source's string literals)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass) or klass is object:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for statement, following in zip(body, body[1:]):
            if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[statement.target.id] = " ".join(following.value.value.split())
    return docs


def agent_options(name: str) -> list[dict[str, Any]]:
    """``[{"name", "default", "meaning"}]`` of agent ``name``'s config, defaults resolved as a study stores them."""
    from rlnas.agents import agent_class

    config = agent_class(name).Config
    defaults = config.from_dict({}).to_dict()
    docs = field_docs(config)
    return [{"name": f.name, "default": defaults.get(f.name), "meaning": docs.get(f.name, "")}
            for f in dataclasses.fields(config)]


def agent_summary(name: str) -> str:
    """The first line of the agent class's docstring."""
    from rlnas.agents import agent_class

    doc = inspect.getdoc(agent_class(name)) or ""
    return " ".join(doc.split("\n\n")[0].split())


def run(args: argparse.Namespace, console: Console) -> int:
    """One table (or JSON object) per agent."""
    from rlnas.agents import list_agents
    from rlnas.plugins import load_plugins

    load_plugins()  # the installed packages' too: they are listed
    names = args.names or list_agents()
    listing = {n: {"summary": agent_summary(n), "options": agent_options(n)} for n in names}
    if args.json:
        write_stdout(json.dumps(listing, indent=2) + "\n")
        return 0
    for name, about in listing.items():
        table = Table(title=literal(f"{name}: {about['summary']}"), title_justify="left")
        for column in ("option", "default", "meaning"):
            table.add_column(column, overflow="fold")
        for option in about["options"]:
            table.add_row(option["name"], literal(json.dumps(option["default"])), literal(option["meaning"]))
        console.print(table)
    console.print("Set options with --agent-config '{\"name\": value}' or --set name=value.")
    return 0
