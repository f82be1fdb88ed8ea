"""Upgrading a database made by an earlier Legato: each backend, from schema version 4."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from legato.records import RunStatus
from legato.store import open_store
from legato.store.sqlfiles import load_migrations, split_statements
from tests.helpers import run

OLD_RUN = (
    "INSERT INTO runs (run_id, workflow, status, created_at, updated_at) "
    "VALUES ('old', 'wf', 'pending', 1, 1)"
)
MIGRATIONS = (
    "CREATE TABLE schema_migrations "
    "(version integer PRIMARY KEY, applied_at double precision NOT NULL)"
)


def schema_4_statements(package: str) -> list[str]:
    """What Legato up to schema version 4 ran, plus one run it stored."""
    statements = [MIGRATIONS]
    for version, script in load_migrations(package):
        if version <= 4:
            statements.extend(split_statements(script))
            statements.append(f"INSERT INTO schema_migrations VALUES ({version}, {time.time()})")
    return [*statements, OLD_RUN]


@pytest.fixture
def schema_4_sqlite(tmp_path: Path) -> str:
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as conn:
        for statement in schema_4_statements("legato.store.sqlite"):
            conn.execute(statement)
    return f"sqlite:///{path}"


@pytest.fixture
def schema_4_postgres(postgres_server: str) -> Iterator[str]:
    schema = f"m_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        with conn.transaction():
            for statement in schema_4_statements("legato.store.postgres"):
                conn.execute(statement)
    yield f"{postgres_server}?schema={schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_schema_4_database_upgrades_to_5_and_keeps_its_runs(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url: str = request.getfixturevalue(f"schema_4_{backend}")

    async def body() -> None:
        store = open_store(url)
        assert await store.upgrade() == [5]
        assert await store.upgrade() == []  # once only
        await store.open()
        try:
            old = await store.get_run("old")
            assert old is not None and old.status is RunStatus.PENDING
            assert old.recoveries == 0  # the new column, filled in for existing runs
            (claimed,) = await store.claim_runs("w1", 10, 2.0, 2.0, 15, ["wf"])
            assert claimed.run.run_id == "old" and claimed.run.recoveries == 0
        finally:
            await store.close()

    run(body)
