"""Stores: ``open_store(url)`` gives a SQLAlchemy store for a URL, or an in-memory one for ``None``."""
from __future__ import annotations

import contextlib
import os
from typing import Any

from rlnas.errors import StorageError
from rlnas.store.base import InMemoryStore, Lease, Store, StudyRecord

DEFAULT_STORAGE = "sqlite:///rlnas.db"


def open_store(url: str | Store | None, *, create: bool = True) -> Store:
    """Open the store at ``url``.

    ``None`` or ``":memory:"`` gives an :class:`InMemoryStore`. Anything else must be a
    SQLAlchemy URL (``sqlite:///file.db``, ``postgresql+psycopg://user@host/db``). With
    ``create=False`` a missing SQLite file or a database without rlnas tables is an error
    instead of being created. Every problem is a :class:`StorageError` with a one-line message.
    """
    if isinstance(url, Store):
        return url
    if url is None or url == ":memory:":
        return InMemoryStore()
    if not isinstance(url, str):
        hint = f" (a file: 'sqlite:///{url}')" if isinstance(url, os.PathLike) else ""
        raise StorageError(f"storage must be a database URL, a Store or None, got {type(url).__name__} {url!r}{hint}")
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from rlnas.store.sql import SQLStore

    try:
        parsed = make_url(url)
        parsed.port  # noqa: B018 - a port that is not a number fails only here
    except (ArgumentError, ValueError):
        raise StorageError(f"storage {_hidden(url)!r} is not a database URL (e.g. sqlite:///rlnas.db or "
                           "postgresql+psycopg://user@host/db)") from None
    shown = shown_url(parsed)
    new_file = None  # a SQLite file this call creates: removed again if the database cannot be made in it
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:":  # e.g. sqlite:///$DB with DB unset
            raise StorageError(f"storage {shown} names no database file, so nothing would be kept: give a path "
                               "(sqlite:///rlnas.db); in Python, storage=None keeps a study in memory")
        if parsed.query.get("uri") != "true":  # a SQLite URI (file:...?uri=true) is the user's own business
            # one file for every command, as SQLite itself resolves it: 'a.db/' and 'missing/../a.db' are ./a.db
            path = os.path.abspath(path)
            parsed = parsed.set(database=path)
            folder = os.path.dirname(path)
            if not os.path.isdir(folder):
                raise StorageError(f"cannot open {shown}: folder {folder} does not exist")
            if not create and not os.path.exists(path):
                raise StorageError(f"no database at {shown}")
            if os.path.isdir(path):
                raise StorageError(f"cannot open {shown}: {path} is a folder")
            if not create and os.path.getsize(path) == 0:  # SQLite would make it a database: a write
                raise StorageError(f"no database at {shown}: {path} is an empty file")
            if not create and not _may_hold_studies(path):  # before SQLite's first connection switches it to WAL
                raise StorageError(f"{shown} holds no rlnas studies")
            if not os.access(folder, os.W_OK):
                parsed = _read_only_sqlite(parsed, path, shown, create)
            elif create and not os.path.exists(path):  # (through a dangling link: the file it points to)
                new_file = os.path.realpath(path)
    try:
        # PostgreSQL: a pooled connection is checked before use (the server may have restarted since)
        engine = sa.create_engine(parsed, pool_pre_ping=parsed.get_backend_name() == "postgresql")
    except NoSuchModuleError:  # no such database kind: a driver would not help
        backend = parsed.get_backend_name()
        what = (f"unknown driver {parsed.get_driver_name()!r} of {backend}" if backend in ("sqlite", "postgresql")
                else f"unknown kind of database {backend!r}" + (" (postgresql://...)" if backend == "postgres" else ""))
        raise StorageError(f"cannot use {shown}: {what}; rlnas stores in sqlite:///FILE or "
                           "postgresql://user@host/db") from None
    except (ModuleNotFoundError, ImportError) as exc:
        backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
        if backend not in ("sqlite", "postgresql"):  # a kind rlnas does not store in, whatever its driver
            raise StorageError(f"cannot use {shown}: rlnas does not store in {backend} databases; it stores in "
                               "sqlite:///FILE or postgresql+psycopg://user@host/db") from None
        hint = ""
        if backend == "postgresql":
            hint = (" (pip install 'rlnas[postgres]')" if driver == "psycopg"
                    else "; rlnas installs psycopg 3: write postgresql+psycopg://... (pip install 'rlnas[postgres]')")
        raise StorageError(f"cannot use {shown}: missing database driver: {exc}{hint}") from None
    except ArgumentError as exc:
        raise StorageError(f"cannot use {shown}: {exc}") from None
    try:
        try:
            return SQLStore(engine, create=create, url=shown)
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
            raise StorageError(f"cannot use {shown}: {reason}") from None
    except StorageError:
        engine.dispose()
        if new_file is not None:  # (a full disk): a failed command leaves no empty database behind
            _remove_if_empty(new_file)
        raise


def _remove_if_empty(path: str) -> None:
    """Remove a SQLite file (and its -wal, -shm, -journal) that holds nothing: neither the file nor its -wal has
    a byte. A file that another process made a database in meanwhile is not empty (its header is written)."""
    companions = [f"{path}-wal", f"{path}-shm", f"{path}-journal"]
    with contextlib.suppress(OSError):
        if os.path.getsize(path) > 0 or any(os.path.exists(p) and os.path.getsize(p) > 0 for p in companions[:1]):
            return
        for leftover in (path, *companions):
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)


def shown_url(parsed: Any) -> str:
    """A database URL as messages show it: a password, in the URL or as its ``password`` parameter, as ``***``."""
    return _hidden(str(parsed.render_as_string(hide_password=True)))


def _hidden(url: str) -> str:
    """A URL that could not be parsed, with what follows ``password=`` or a ``user:`` before ``@`` hidden."""
    import re

    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url)
    return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", url)


def _may_hold_studies(path: str) -> bool:
    """False when the SQLite file at ``path``, read without a single write, has no rlnas tables: a command
    that only reads must leave such a file as it found it (SQLite's first connection would switch it to
    WAL mode). True when it has them, when it is in WAL mode already (as rlnas leaves its databases: there is
    nothing to switch, and a read-only connection would leave -wal and -shm files behind), and when this
    check cannot tell (the store then reports the file)."""
    import sqlite3
    from urllib.parse import quote

    from rlnas.files import opened_as_store

    if opened_as_store(path):  # a store of this process: reading its header here would drop its locks
        return True
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return True
    if not header.startswith(b"SQLite format 3\x00") or header[18] == 2:  # byte 18: 2 in WAL mode, 1 before
        return True
    try:
        with contextlib.closing(sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True)) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'rlnas_schema_version'")
            return found.fetchone() is not None
    except sqlite3.Error:  # not a database, locked, a WAL file it cannot read here: the store says what it is
        return True


def _read_only_sqlite(parsed: Any, path: str, shown: str, create: bool) -> Any:
    """The URL that reads an existing SQLite file in a folder this process cannot write to.

    SQLite in WAL mode (what the store uses) needs to create ``-shm`` and ``-wal`` files next to the
    database even to read it; in a read-only folder (an archive, a read-only mount) it can read the
    file only as immutable, which is exact when no ``-wal`` file holds changes not yet in it.
    """
    from urllib.parse import quote

    if create:
        raise StorageError(f"cannot use {shown}: folder {os.path.dirname(os.path.abspath(path))} is not writable")
    wal = f"{path}-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise StorageError(f"cannot read {shown}: its folder is not writable and {wal} holds changes not yet in the "
                           "database (copy both files to a writable folder)")
    return parsed.set(database=f"file:{quote(os.path.abspath(path))}",
                      query={"mode": "ro", "immutable": "1", "uri": "true"})


__all__ = ["DEFAULT_STORAGE", "InMemoryStore", "Lease", "Store", "StudyRecord", "open_store", "shown_url",
           "StorageError"]
