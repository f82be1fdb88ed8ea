"""A review's reproductions of store, change-feed and writer bugs; each failed on 5957a43."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

import legato
from legato.errors import Unavailable
from legato.records import NewRun
from legato.store import open_store
from legato.store.ops import one
from tests.helpers import run, wait_until


@legato.workflow
async def review_waits_go() -> str:
    await legato.wait_for_signal("go")
    return "done"


@legato.workflow
async def review_quick() -> int:
    await legato.sleep(0.2)
    return 1


def test_resident_run_sees_other_process_signal_while_a_client_waits(tmp_path: Path) -> None:
    """Finding 1: the feed and the worker share one store's data_version baseline."""
    url = f"sqlite:///{tmp_path / 'l.db'}"

    async def body() -> None:
        store = open_store(url)
        await store.open()
        worker = legato.Worker(store, workflows=[review_waits_go], evict_after=60)
        task = asyncio.create_task(worker.run())
        client = legato.AsyncClient(store)
        try:
            h = await client.start(review_waits_go)

            def resident_and_waiting() -> bool:
                execution = worker.executions.get(h.run_id)
                return execution is not None and bool(execution.ctx.waits)

            await wait_until(resident_and_waiting)
            waiter = asyncio.ensure_future(client.wait(h.run_id, timeout=60))
            await wait_until(lambda: h.run_id in client._feed._waiters)
            code = (
                "import asyncio, legato\n"
                "async def m():\n"
                f"    async with legato.AsyncClient({url!r}) as c:\n"
                f"        await c.signal({h.run_id!r}, 'go')\n"
                "asyncio.run(m())\n"
            )
            subprocess.run([sys.executable, "-c", code], check=True)
            record = await asyncio.wait_for(waiter, 5)  # takes evict_after (60 s) today
            assert record.status is legato.RunStatus.COMPLETED
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)
            await store.close()

    run(body)


def test_sqlite_write_submitted_while_closing_does_not_hang(tmp_path: Path) -> None:
    """Finding 2: ops queued behind the writer's stop sentinel are never resolved."""

    started = threading.Event()

    def slow_op():  # type: ignore[no-untyped-def]
        started.set()
        time.sleep(0.5)  # holds the writer while close() begins behind it
        yield one("get_run", run_id="x")

    def quick_op():  # type: ignore[no-untyped-def]
        yield one("get_run", run_id="y")
        return "ran"

    async def body() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
        await store.open()
        store._submit(slow_op)  # type: ignore[attr-defined]
        writer = store._engine.writer  # type: ignore[attr-defined]
        assert await asyncio.to_thread(started.wait, 5)  # the writer is inside slow_op
        closing = asyncio.ensure_future(store.close())
        await wait_until(lambda: writer._closing)  # close() has begun
        try:
            late = store._submit(quick_op)  # type: ignore[attr-defined]
        except Unavailable:
            await closing
            return  # refusing is fine
        await closing
        with contextlib.suppress(Unavailable):  # failing is fine; hanging is not
            await asyncio.wait_for(late, 3)

    run(body)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_sqlite_writer_resolves_its_group_when_an_op_raises_base_exception(tmp_path: Path) -> None:
    """Finding 6: a BaseException kills the writer thread; the group's futures hang."""

    def ok_op():  # type: ignore[no-untyped-def]
        yield one("get_run", run_id="y")
        return "ok"

    def bad_op():  # type: ignore[no-untyped-def]
        yield one("get_run", run_id="x")
        raise SystemExit("boom")

    async def body() -> None:
        store = open_store(f"sqlite:///{tmp_path / 'l.db'}")
        await store.open()
        a = store._submit(ok_op)  # type: ignore[attr-defined]
        store._submit(bad_op)  # type: ignore[attr-defined]
        done, _ = await asyncio.wait([a], timeout=3)
        assert done, "an innocent op of the group never resolved"

    run(body)


def test_feed_keeps_checking_after_one_failed_read(tmp_path: Path) -> None:
    """Finding 3: RunFeed._check_others dies on the first store error."""
    path = tmp_path / "l.db"

    async def body() -> None:
        async with legato.AsyncClient(f"sqlite:///{path}") as client:
            a = await client.start("w.a")
            b = await client.start("w.b")
            real = client.store.run_statuses
            calls = {"n": 0}

            async def flaky(ids):  # type: ignore[no-untyped-def]
                calls["n"] += 1
                if calls["n"] == 1:
                    raise Unavailable("transient")
                return await real(ids)

            client.store.run_statuses = flaky  # type: ignore[method-assign]
            wa = asyncio.ensure_future(client.wait(a.run_id))
            wb = asyncio.ensure_future(client.wait(b.run_id))
            await wait_until(lambda: len(client._feed._waiters) == 2)
            other = sqlite3.connect(path)
            other.execute("UPDATE runs SET updated_at = 1 WHERE run_id = ?", (a.run_id,))
            other.commit()
            await wait_until(lambda: calls["n"] >= 1)  # the failed read happened
            other.execute("UPDATE runs SET status = 'completed' WHERE run_id = ?", (b.run_id,))
            other.commit()
            other.close()
            try:
                await asyncio.wait_for(wb, 3)  # 30 s (the safety net) today
            finally:
                wa.cancel()

    run(body)


def test_client_used_under_a_second_event_loop_is_woken_at_once(tmp_path: Path) -> None:
    """Finding 4: RunFeed keeps the first loop; notices go to a closed loop afterwards."""
    client = legato.AsyncClient(f"sqlite:///{tmp_path / 'l.db'}")

    async def once() -> float:
        await client.open()
        h = await client.start(review_quick)
        worker = legato.Worker(client, workflows=[review_quick])
        task = asyncio.create_task(worker.run())
        t0 = time.monotonic()
        await client.wait(h.run_id, poll=10)
        took = time.monotonic() - t0
        worker.stop()
        await task
        return took

    asyncio.run(once())
    second = asyncio.run(once())
    asyncio.run(client.close())
    assert second < 3, f"the second loop's wait took {second:.1f} s (the poll safety net)"


def test_postgres_long_run_id_fails_only_its_own_op(postgres_url: str) -> None:
    """Finding 5: a notice payload over 8000 bytes fails pg_notify and the whole group."""

    async def body() -> None:
        store = open_store(postgres_url)
        await store.open()
        try:
            now = time.time()
            long = asyncio.ensure_future(store.create_run(NewRun("x" * 8000, "w", None), now))
            short = asyncio.ensure_future(store.create_run(NewRun("innocent", "w", None), now))
            await asyncio.gather(long, short, return_exceptions=True)
            assert short.exception() is None, short.exception()
            assert long.exception() is None, long.exception()  # works on SQLite and before
        finally:
            await store.close()

    run(body)


def test_postgres_cancelled_close_does_not_strand_writes(postgres_url: str) -> None:
    """Finding 7: cancelling close() cancels the writer task; in-flight futures hang."""
    schema = postgres_url.rsplit("schema=", 1)[1]
    base = postgres_url.split("?", 1)[0]

    async def body() -> None:
        store = open_store(postgres_url)
        await store.open()
        conn = await psycopg.AsyncConnection.connect(base)
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('legato-events/' || %s))", (schema,)
        )
        blocked = asyncio.ensure_future(store.append_event("{}", "t", "s", time.time()))

        def writer_waits_on_the_lock() -> bool:
            writer_pid = store._writer.backend_pid  # type: ignore[attr-defined]
            if writer_pid is None:  # it connects with its first group
                return False
            with psycopg.connect(base, autocommit=True) as probe:
                row = probe.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (writer_pid,)
                ).fetchone()
            return row is not None and row[0] == "Lock"

        await wait_until(writer_waits_on_the_lock)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(store.close(), 0.5)
        await conn.rollback()
        await conn.close()
        done, _ = await asyncio.wait([blocked], timeout=3)
        assert done, "the write in flight when close() was cancelled never resolved"

    run(body)
