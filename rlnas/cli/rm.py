"""``rlnas rm``: delete studies (trials, checkpoints, diagnostics and the trained weights they kept)."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from rich.console import Console

from rlnas.cli._common import add_storage, literal, open_existing_store
from rlnas.errors import ConfigError, DamagedStudy
from rlnas.store.base import readable_studies


def add_parser(commands: Any) -> None:
    """Register ``rm``."""
    p = commands.add_parser("rm", help="delete studies and everything they stored")
    p.add_argument("names", nargs="+", metavar="NAME", help="study name or shell glob")
    p.add_argument("--keep-weights", action="store_true", help="leave the trained-weights folder on disk")
    p.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    add_storage(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace, console: Console) -> int:
    """Check every name first (a running study is refused), then delete."""
    from rlnas.cli._status import live_driver
    from rlnas.reports.snapshot import match_studies

    store = open_existing_store(args.storage)
    names: list[str] = []
    for pattern in args.names:
        names += [n for n in match_studies(store, pattern) if n not in names]
    records, damaged = [], []
    for name in names:
        try:
            records.append(store.get_study(name))
        except DamagedStudy as exc:  # its weights folder is named in the definition it cannot read
            damaged.append(exc)
    # a damaged study too: its lease is read by its id (a driver that loaded it before the damage runs on)
    for name, study_id in [(r.name, r.id) for r in records] + [(exc.name, exc.study_id) for exc in damaged]:
        driver = live_driver(store, study_id)
        if driver is not None:
            raise ConfigError(f"study {name!r} is running ({driver}): stop it first")
    doomed = set(names)
    kept_folders = {(r.evaluator or {}).get("weights_dir") for r in readable_studies(store)[0] if r.name not in doomed}
    for record in records:
        folder = record.evaluator.get("weights_dir")
        weights = Path(folder) if folder and not args.keep_weights and Path(folder).is_dir() else None
        shared = weights is not None and folder in kept_folders
        files = _own_weight_files(store, record, weights) if shared else []
        what = f"study {record.name!r}" + (f" and its {len(files)} weights file(s) in {weights}, a folder other "
                                           f"studies share" if shared else
                                           f" and its weights folder {weights}" if weights else "")
        if args.dry_run:
            console.print(literal(f"would delete {what}"))
            continue
        store.delete_study(record.name)
        if weights is not None and not shared:
            shutil.rmtree(weights)
        for path in files:
            path.unlink(missing_ok=True)
        console.print(literal(f"deleted {what}"))
    for exc in damaged:
        what = (f"damaged study {exc.name!r} (its definition cannot be read, so a weights folder it kept, "
                f"if any, stays on disk)")
        if not args.dry_run:
            store.delete_study(exc.name)
        console.print(literal(f"{'would delete' if args.dry_run else 'deleted'} {what}"))
    return 0


def _own_weight_files(store: Any, record: Any, folder: Path) -> list[Path]:
    """The weights files in ``folder`` that the trials of ``record`` name."""
    names = {t.eval_info.get("weights") for t in store.trials(record.id)}
    return sorted(folder / n for n in names if isinstance(n, str) and (folder / n).is_file())
