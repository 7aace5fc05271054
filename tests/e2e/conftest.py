"""Fixtures shared by the end-to-end suites."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest


@pytest.fixture
def e2e_dsn(request, pg_server) -> Iterator[str]:
    """A fresh database on the test PostgreSQL for one stack, named after the test module,
    dropped afterwards (the stack's services create their tables in it)."""
    import psycopg

    name = "e2e_" + re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.dsn_for(name)
    with psycopg.connect(pg_server.dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
