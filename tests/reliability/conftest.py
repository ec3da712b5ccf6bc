"""Fixtures of the fault suite: a fresh database on each backend (the PostgreSQL server and its
``pg_url`` databases come from ``tests/conftest.py``)."""
from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request, tmp_path):
    """A fresh database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return request.getfixturevalue("pg_url")
