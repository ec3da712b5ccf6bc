"""Shared fixtures: the path of the shared data folder and the console script."""
from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    """Two CI cores: keep torch from oversubscribing them."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


@pytest.fixture
def rlnas_bin() -> str:
    """Path of the installed ``rlnas`` console script (next to the running Python)."""
    path = Path(sys.executable).parent / "rlnas"
    if not path.exists():
        pytest.fail(f"the rlnas console script is not installed next to {sys.executable}")
    return str(path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of a fresh SQLite file."""
    return f"sqlite:///{os.path.join(tmp_path, 'runs.db')}"


@pytest.fixture(scope="session")
def postgres_server_url():
    """URL of the session's PostgreSQL server (``postgres`` database); stopped and deleted at the end."""
    from rlnas.testing.postgres import PostgresUnavailable, postgres_server

    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as exc:
            pytest.skip(f"no PostgreSQL server: {exc}")
        yield url


@pytest.fixture
def pg_url(postgres_server_url):
    """URL of a new, empty database on the session's server."""
    from rlnas.testing.postgres import fresh_database

    return fresh_database(postgres_server_url)
