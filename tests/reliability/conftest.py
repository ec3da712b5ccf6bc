"""Fixtures of the fault suite: a PostgreSQL server started by the tests, a fresh database on each backend."""
from __future__ import annotations

from contextlib import ExitStack

import pytest

from rlnas.testing.postgres import PostgresUnavailable, fresh_database, postgres_server


@pytest.fixture(scope="session")
def postgres_server_url():
    """URL of the session's throwaway PostgreSQL server; skipped, with the reason, where there is none."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as exc:
            pytest.skip(f"no PostgreSQL server: {exc}")
        yield url


@pytest.fixture
def pg_url(postgres_server_url):
    """URL of a new, empty database on the session's server."""
    return fresh_database(postgres_server_url)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    """A fresh database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return request.getfixturevalue("pg_url")

