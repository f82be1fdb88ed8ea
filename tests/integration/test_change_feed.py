"""The change feed: waiting for a run reads it when it changes, not every few milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

import legato
from legato.store import open_store
from tests.helpers import run, running_worker, status_is, wait_until


@legato.workflow
async def feed_waits_for_go() -> str:
    await legato.wait_for_signal("go")
    return "done"


def test_a_wait_reads_the_run_only_when_it_changes(db_url: str) -> None:
    """A worker and a client on separate stores of one database, as the docs show: while
    the run waits for its signal nothing reads it; its end wakes the waiter at once."""

    async def body() -> None:
        async with running_worker(db_url), legato.AsyncClient(db_url) as client:
            handle = await client.start(feed_waits_for_go)
            await wait_until(status_is(client, handle.run_id, legato.RunStatus.WAITING))
            start = client.store.stats["reads"]
            waiting = asyncio.ensure_future(client.wait(handle.run_id, timeout=60))
            await wait_until(lambda: client.store.stats["reads"] > start)  # its first read
            before = client.store.stats["reads"]
            # A deliberate observation window, not a pause for something to settle: a
            # waiter that polled every 50 ms would read about 20 times in it.
            await asyncio.sleep(1.0)
            during = client.store.stats["reads"] - before
            assert not waiting.done()
            async with legato.AsyncClient(db_url) as sender:
                await sender.signal(handle.run_id, "go")
            record = await asyncio.wait_for(waiting, 30)
            after = client.store.stats["reads"] - before
        assert record.status is legato.RunStatus.COMPLETED
        # A heartbeat of the worker holding the run may commit once in the window (SQLite
        # cannot tell whose commit it was, so it looks once); nothing else reads.
        assert during <= 1, during
        assert after <= during + 3, after

    run(body)


APP = str(Path(__file__).parents[1] / "apps" / "chaos.py")


def test_a_wait_sees_a_run_ended_by_another_process(db_url: str, tmp_path: Path) -> None:
    """The worker runs in another process: on PostgreSQL its notices arrive by LISTEN; on
    SQLite the feed sees that the database changed and reads the awaited runs once."""

    async def body() -> None:
        env = {**os.environ, "LEGATO_DB": db_url, "LEGATO_CHAOS_DIR": str(tmp_path)}
        async with legato.AsyncClient(db_url) as client:
            handle = await client.start("single_step", 1.0)  # served by the worker's app
            worker = subprocess.Popen(
                [sys.executable, "-m", "legato", "worker", "--app", APP],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                before = client.store.stats["reads"]
                record = await client.wait(handle.run_id, timeout=60)
                reads = client.store.stats["reads"] - before
            finally:
                worker.terminate()
                worker.wait(30)
        assert record.status is legato.RunStatus.COMPLETED
        # The run took over a second; polling every 50 ms would have read 20 times or more.
        assert reads <= 10, reads

    run(body)


def test_the_feed_stops_listening_when_the_client_closes(tmp_path: Path) -> None:
    async def body() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
        await store.open()
        try:
            client = legato.AsyncClient(store)
            handle = await client.start("never-served")
            with_timeout = client.wait(handle.run_id, timeout=0.2)
            with contextlib.suppress(TimeoutError):
                await with_timeout
            await client.close()
            assert client._feed._waiters == {}
            assert not client._feed._listening
        finally:
            await store.close()

    run(body)
