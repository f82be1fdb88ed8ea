"""Shared fixtures: a fresh database per test, on every backend the suite covers.

PostgreSQL tests use ``LEGATO_TEST_POSTGRES`` (default: the local server's ``test``
database) with a schema of their own per test, dropped afterwards. The PostgreSQL half is
never skipped: without a reachable server the run fails, with a message saying so.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from legato.store import open_store
from legato.testing import forget, memory_url

BACKENDS = ["sqlite", "postgres"]
POSTGRES = os.environ.get("LEGATO_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The PostgreSQL URL, checked once: unreachable fails the run (in CI and locally)."""
    try:
        with psycopg.connect(POSTGRES, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        pytest.fail(
            f"PostgreSQL is required for the test suite and is not reachable at {POSTGRES} "
            f"({exc}); start it or set LEGATO_TEST_POSTGRES",
            pytrace=False,
        )
    return POSTGRES


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose tables (upgraded to the current schema) live in a schema of its own."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    url = f"{postgres_server}?schema={schema}"
    asyncio.run(open_store(url).upgrade())
    yield url
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL for one test, on each backend the suite runs on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'legato.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


STORE_BACKENDS = ["sqlite", "memory", "postgres"]


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """For the store contract suite: also the in-memory database of ``legato.testing``."""
    if request.param == "memory":
        url = memory_url()
        yield url
        forget(url)
        return
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'legato.db'}"
        return
    yield request.getfixturevalue("postgres_url")
