"""The writers: one failing op costs one rollback, commits are counted truly, and a broken
connection (in any phase of a group) fails only the ops in flight, never the writer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import psycopg
import pytest

import legato
from legato.records import NewRun, RunStatus
from legato.store import Lease, Store, open_store
from legato.store import runs as run_ops
from legato.store import signals as signal_ops
from tests.helpers import run

NOW = 1_800_000_000.0


async def opened(url: str) -> Store:
    store = open_store(url)
    await store.open()
    return store


async def ended_run(store: Store, run_id: str) -> None:
    """A run that has completed (a signal to it is refused with RunEnded)."""
    await store.create_run(NewRun(run_id, "wf", None), NOW)
    (claimed,) = await store.claim_runs("w", 1, NOW, NOW, 30, ["wf"])
    lease = Lease(run_id, "w", claimed.run.lease_epoch)
    assert await store.finish_run(lease, RunStatus.COMPLETED, "1", None, NOW)


def test_one_failing_signal_among_300_costs_one_commit_and_fails_alone(db_url: str) -> None:
    async def body() -> None:
        store = await opened(db_url)
        try:
            await store.create_run(NewRun("target", "other", None), NOW)
            await ended_run(store, "ended")
            # Hold the writer in an op of its own while the 301 are queued, so they form
            # one group whatever the threads' timing (SQLite's writer is a thread; the
            # PostgreSQL writer is a task that cannot run before this test awaits).
            sqlite = store.url.startswith("sqlite")
            entered, release = threading.Event(), threading.Event()

            def held() -> Any:
                if sqlite:
                    entered.set()
                    release.wait(10)
                return run_ops.get_run("target")

            before = store.stats["commits"]
            first = store._submit(held)
            if sqlite:
                assert await asyncio.to_thread(entered.wait, 10)
            sends = [
                asyncio.ensure_future(store.send_signal("target", "go", str(i), NOW))
                for i in range(300)
            ]
            sends.append(asyncio.ensure_future(store.send_signal("ended", "go", None, NOW)))
            await asyncio.sleep(0)  # every send is queued now
            release.set()
            await first
            outcomes = await asyncio.gather(*sends, return_exceptions=True)
            assert store.stats["commits"] - before == 2  # the held op's, then the group's
            assert all(o is None for o in outcomes[:300])
            assert isinstance(outcomes[300], legato.RunEnded)
            claimed = await store.claim_runs("w", 1, NOW, NOW, 30, ["other"])
            assert len(claimed[0].signals) == 300  # all of them committed
        finally:
            await store.close()

    run(body)


def test_a_failed_op_leaves_no_trace_of_its_own_statements(db_url: str) -> None:
    """The op's savepoint is rolled back: what it wrote before raising is undone."""

    def half_then_fail() -> Any:
        yield from run_ops.create_run(NewRun("half", "wf", None), NOW)
        raise legato.Conflict("refused after writing")

    async def body() -> None:
        store = await opened(db_url)
        try:
            results = await asyncio.gather(
                store._submit(half_then_fail),
                store._submit(partial(run_ops.create_run, NewRun("whole", "wf", None), NOW)),
                return_exceptions=True,
            )
            assert isinstance(results[0], legato.Conflict)
            assert await store.get_run("half") is None
            assert await store.get_run("whole") is not None
        finally:
            await store.close()

    run(body)


def terminate(server: str, pid: int) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_postgres_writer_survives_its_backend_killed_while_a_failed_group_reruns(
    postgres_server: str, postgres_url: str
) -> None:
    async def body() -> None:
        store = await opened(postgres_url)
        try:
            await ended_run(store, "ended")
            await store.create_run(NewRun("target", "other", None), NOW)
            writer = store._writer  # type: ignore[attr-defined]
            pid = writer.backend_pid
            passes = 0

            def kill_on_rerun() -> Any:
                # Called once per pass of the group: the second pass is the re-run with
                # savepoints, after the failing signal below rolled the first one back.
                nonlocal passes
                passes += 1
                if passes == 2:
                    terminate(postgres_server, pid)
                return signal_ops.send_signal("target", "go", None, NOW)

            group = [
                store._submit(kill_on_rerun),
                store._submit(partial(signal_ops.send_signal, "ended", "go", None, NOW)),
            ]
            outcomes = await asyncio.gather(*group, return_exceptions=True)
            assert passes == 2
            assert all(isinstance(o, legato.Unavailable) for o in outcomes), outcomes
            assert not any(isinstance(o, psycopg.Error) for o in outcomes)
            # The writer reconnected: later writes succeed (they used to hang for ever).
            created = await asyncio.wait_for(store.create_run(NewRun("after", "wf", None), NOW), 20)
            assert created[1]
            assert writer.backend_pid != pid
            assert (await store.get_run("after")) is not None
        finally:
            await store.close()

    run(body)


def test_a_write_after_the_writer_stopped_raises_instead_of_waiting(db_url: str) -> None:
    async def body() -> None:
        store = await opened(db_url)
        await store.close()
        with pytest.raises(legato.Unavailable, match="not open"):
            await asyncio.wait_for(store.create_run(NewRun("late", "wf", None), NOW), 5)

    run(body)


def test_no_driver_exception_reaches_a_client_while_backends_are_terminated(
    postgres_server: str, postgres_url: str
) -> None:
    """Terminate every backend of the schema's stores again and again during client calls:
    each call succeeds or raises a Legato error (Unavailable), never a psycopg one."""

    async def body() -> None:
        stop = threading.Event()

        def killer() -> None:
            with psycopg.connect(postgres_server, autocommit=True) as conn:
                while not stop.is_set():
                    found = conn.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name LIKE 'legato %' AND pid <> pg_backend_pid()"
                    ).fetchall()
                    nonlocal killed
                    killed += len(found)
                    stop.wait(0.3)

        seen: list[BaseException] = []
        successes = 0
        killed = 0
        thread = threading.Thread(target=killer, daemon=True)
        async with legato.AsyncClient(postgres_url) as client:
            thread.start()
            try:
                deadline = time.monotonic() + 30
                i = 0
                while killed < 12 and time.monotonic() < deadline:
                    i += 1
                    calls: list[Callable[[], Any]] = [
                        lambda: client.list(limit=5),
                        partial(client.get, f"r{i}"),
                        partial(client.signal, f"r{i}", "go"),
                    ]
                    for call in calls:
                        try:
                            await call()
                            successes += 1
                        except Exception as exc:
                            seen.append(exc)
            finally:
                stop.set()
                thread.join()
        leaked = [e for e in seen if not isinstance(e, legato.LegatoError)]
        assert leaked == [], leaked[:3]
        assert killed > 10  # the killer did hit the store's connections, again and again
        assert successes > 0

    run(body)
