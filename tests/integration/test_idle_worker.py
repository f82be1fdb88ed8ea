"""An idle worker on SQLite writes nothing: no write transaction in ten seconds."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

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
