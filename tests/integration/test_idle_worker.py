"""An idle worker on SQLite writes nothing: no write transaction in ten seconds."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from legato.records import NewRun
from legato.store import open_store
from tests.helpers import run, running_worker, wait_until


@pytest.mark.slow
def test_an_idle_sqlite_worker_commits_nothing_for_ten_seconds(tmp_path: Path) -> None:
    path = tmp_path / "idle.db"
    url = f"sqlite:///{path}"

    async def body() -> None:
        async with running_worker(url) as (worker, client):
            await wait_until(lambda: worker.runs_claimed == 0 and worker.store.stats["commits"])
            workers = await client.list_workers()
            assert [w.worker_id for w in workers] == [worker.worker_id]  # registered
            commits = worker.store.stats["commits"]
            # Another connection sees data_version change whenever anyone else commits.
            watcher = sqlite3.connect(path)
            try:
                first = watcher.execute("PRAGMA data_version").fetchone()[0]
                changes = 0
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.05)  # the sampling interval of the window
                    now = watcher.execute("PRAGMA data_version").fetchone()[0]
                    changes += now != first
                    first = now
            finally:
                watcher.close()
            assert changes == 0  # no write transaction reached the file
            assert worker.store.stats["commits"] == commits  # nor was one begun and emptied
            assert worker.store.stats["reads"] > 0  # it did keep looking, by reads

    run(body)


def test_a_run_the_worker_cannot_take_does_not_keep_it_awake(db_url: str) -> None:
    """A run of a workflow this worker does not have, with its lease long expired: the
    worker must sleep, not claim in a tight loop (it made thousands of claim
    transactions a second before next_wake_at learnt the worker's filters)."""

    async def body() -> None:
        store = open_store(db_url)
        await store.open()
        try:
            now = time.time()
            await store.create_run(NewRun("foreign", "elsewhere", None), now)
            # Claimed by a worker that died: its lease ran out 100 s ago.
            assert await store.claim_runs("ghost", 1, now, now - 101, 1, ["elsewhere"])
            async with running_worker(store, poll_interval=1.0) as (worker, _):
                await wait_until(lambda: worker.store.stats["commits"] > 0)  # registered
                before = worker.store.stats["commits"]
                await asyncio.sleep(1.0)  # an observation window, not a pause to settle
                commits = worker.store.stats["commits"] - before
            assert commits <= 3, commits
            run_record = await store.get_run("foreign")
            assert run_record is not None and run_record.owner == "ghost"  # never taken
        finally:
            await store.close()

    run(body)
