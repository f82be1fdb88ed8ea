"""A second review's reproductions: the shared SQLite engine and the feed across loops."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import legato
from legato.store import open_store
from legato.store.sqlite import store as sqlite_store
from legato.testing import forget, memory_url
from tests.helpers import run, running_worker


def test_a_store_opened_twice_at_once_is_closed_by_one_close(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'twice.db'}"

    async def body() -> None:
        store = open_store(url)
        await asyncio.gather(store.open(), store.open())
        key = str((tmp_path / "twice.db").resolve())
        engine = sqlite_store._engines[key]
        assert engine.users == 1
        await store.close()
        assert key not in sqlite_store._engines
        assert not engine.writer.is_alive()  # the writer finished and stopped

    run(body)


def test_one_process_cannot_open_a_database_with_two_synchronous_settings(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sync.db"

    async def body() -> None:
        first = open_store(f"sqlite:///{path}?synchronous=NORMAL")
        await first.open()
        try:
            with pytest.raises(legato.ConfigurationError, match="synchronous"):
                await open_store(f"sqlite:///{path}?synchronous=FULL").open()
        finally:
            await first.close()

    run(body)


@legato.workflow(name="review4.gate")
async def gate() -> str:
    await legato.wait_for_signal("go")
    return "done"


def test_a_client_waited_on_from_two_event_loops_wakes_both_at_once() -> None:
    """A wait on the main loop must not lose its wake-up when another thread's loop waits
    on the same client (it used to be dropped, left to the 30 s safety net)."""
    url = memory_url()

    async def body() -> None:
        async with running_worker(url) as (_, client):
            first = await client.start(gate)
            second = await client.start(gate)
            other_waiting = threading.Event()
            other_done: list[legato.RunRecord] = []

            def other_thread() -> None:
                async def wait_second() -> None:
                    waiting = asyncio.ensure_future(client.wait(second.run_id, timeout=60))
                    await asyncio.sleep(0)
                    other_waiting.set()
                    other_done.append(await waiting)

                asyncio.run(wait_second())

            waiting = asyncio.ensure_future(client.wait(first.run_id, timeout=60, poll=60))
            thread = threading.Thread(target=other_thread, daemon=True)
            thread.start()
            assert await asyncio.to_thread(other_waiting.wait, 10)
            await client.signal(first.run_id, "go")
            record = await asyncio.wait_for(waiting, 10)  # the safety net is 60 s here
            assert record.status is legato.RunStatus.COMPLETED
            await client.signal(second.run_id, "go")
            await asyncio.to_thread(thread.join, 30)
            assert [r.status for r in other_done] == [legato.RunStatus.COMPLETED]

    try:
        run(body)
    finally:
        forget(url)
