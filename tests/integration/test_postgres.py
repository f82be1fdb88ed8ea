"""What only the PostgreSQL backend does: explicit schema upgrades, NOTIFY wake-ups."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest

import legato
from legato.store import open_store
from tests.helpers import run, running_worker, wait_until


@pytest.fixture
def empty_schema_url(postgres_server: str) -> Iterator[str]:
    schema = f"e_{uuid.uuid4().hex[:12]}"
    yield f"{postgres_server}?schema={schema}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def legato_cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
    )


def test_a_fresh_database_asks_for_db_upgrade_then_works(empty_schema_url: str) -> None:
    async def open_it() -> None:
        store = open_store(empty_schema_url)
        await store.open()
        await store.close()

    with pytest.raises(legato.SchemaError, match=r"has no Legato tables.*db upgrade"):
        run(open_it)
    refused = legato_cli(empty_schema_url, "runs", "list")
    assert refused.returncode == 1 and "db upgrade" in refused.stderr
    upgraded = legato_cli(empty_schema_url, "db", "upgrade")
    assert upgraded.returncode == 0 and "applied migration(s) 1" in upgraded.stdout
    again = legato_cli(empty_schema_url, "db", "upgrade")
    assert "is up to date" in again.stdout
    run(open_it)
    healthy = legato_cli(empty_schema_url, "health")
    assert healthy.returncode == 0 and healthy.stdout.startswith("ok:")
    needs_worker = legato_cli(empty_schema_url, "health", "--require-worker")
    assert needs_worker.returncode == 1 and "no worker on host" in needs_worker.stderr


@legato.workflow
async def echo(x: int) -> int:
    return x


def test_a_run_started_elsewhere_wakes_an_idle_worker_by_notify(postgres_url: str) -> None:
    async def body() -> None:
        # A poll interval far longer than the test: only LISTEN/NOTIFY can wake the worker.
        async with running_worker(postgres_url, poll_interval=3600) as (worker, _):
            # Idle: listening, past its first claim, and waiting for a wake-up (a run
            # started before would be claimed without any notice).
            await wait_until(
                lambda: (
                    worker.store.changes_are_pushed
                    and worker.runs_claimed == 0
                    and worker._last_claim > 0
                    and worker._wake is not None
                    and not worker._wake.is_set()
                ),
                30,
                "the worker idles",
            )
            other = legato.AsyncClient(postgres_url)  # another store: no in-process wake
            async with other:
                handle = await other.start(echo, 5)
                assert await other.result(handle.run_id, timeout=10) == 5
            assert worker.runs_claimed == 1

    run(body)
