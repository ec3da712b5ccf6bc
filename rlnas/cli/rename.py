"""``rlnas rename``: give a study another name (everything it stored stays with it)."""
from __future__ import annotations

import argparse
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_storage, literal, open_existing_store
from rlnas.errors import ConfigError


def add_parser(commands: Any) -> None:
    """Register ``rename``."""
    p = commands.add_parser("rename", help="give a study another name")
    p.add_argument("name", help="the study's current name")
    p.add_argument("new_name", help="its new name")
    add_storage(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """Rename a study that nobody drives."""
    from rlnas.study import check_name
    from rlnas.study.lease import is_stale
    from rlnas.study.spec import RunOptions

    check_name(args.new_name)
    store = open_existing_store(args.storage)
    record = store.get_study(args.name)
    lease = store.get_lease(record.id)
    if lease is not None and not is_stale(lease, RunOptions().lease_seconds):  # a killed driver's lease is left
        raise ConfigError(f"study {record.name!r} is being driven by {lease.describe()}: stop it first")
    store.rename_study(args.name, args.new_name)
    console.print(literal(f"renamed study {args.name!r} to {args.new_name!r}"))
    return 0
