"""When a run leaves memory: only when every task waits durably, never too early or late."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import legato
from legato import RunStatus
from legato.records import JournalEntry
from legato.store import Lease
from legato.store.sqlite import SQLiteStore
from tests.helpers import run, running_worker, status_is, wait_until


@legato.workflow
async def nap_and_listen() -> str:
    async def napper() -> str:
        await legato.sleep(0.3)
        return "slept"

    async def listener() -> str:
        return str(await legato.wait_for_signal("go"))

    a, b = await asyncio.gather(napper(), listener())
    return f"{a}/{b}"


def test_a_branch_that_stops_waiting_lets_the_run_leave_memory(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(nap_and_listen)
            await client.signal(handle.run_id, "go", "sig")  # buffered: one branch won't wait
            assert await client.result(handle.run_id, timeout=10) == "slept/sig"

    run(body)


started_at: dict[str, float] = {}


@legato.step
async def note(label: str) -> str:
    started_at[label] = time.monotonic()
    return label


async def plain(x: int) -> int:
    await asyncio.sleep(0)
    return x


@legato.workflow
async def busy_branch() -> list[str]:
    async def waiter() -> str:
        return str(await legato.wait_for_signal("go"))

    async def worker() -> str:
        # Plain asyncio work that issues no Legato command for several loop turns.
        await asyncio.gather(plain(1), plain(2))
        await asyncio.gather(plain(3), asyncio.gather(plain(4), plain(5)))
        return await note("branch b")

    return list(await asyncio.gather(waiter(), worker()))


def test_a_run_is_not_evicted_while_a_branch_can_still_run(db_url: str) -> None:
    async def body() -> None:
        started_at.clear()
        async with running_worker(db_url) as (_, client):
            handle = await client.start(busy_branch)

            async def step_done() -> bool:
                journal = await client.journal(handle.run_id)
                return any(e.name == "note" and e.status.value == "completed" for e in journal)

            await wait_until(step_done, timeout=5)  # not held back by the other branch's wait
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING), timeout=5)
            await client.signal(handle.run_id, "go", "x")
            assert await client.result(handle.run_id, timeout=10) == ["x", "branch b"]

    run(body)


@legato.workflow
async def charge_once(order: str) -> str:
    return order


@legato.workflow
async def parent_with_named_child(order: str) -> str:
    try:
        return await legato.child(charge_once, order, run_id=f"charge-{order}")
    except legato.ChildRunError as exc:
        return f"refused: {exc}"


def test_a_child_run_id_used_by_another_run_is_refused(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            first = await client.start(parent_with_named_child, "o1")
            assert await client.result(first.run_id, timeout=10) == "o1"
            second = await client.start(parent_with_named_child, "o1")
            result = await client.result(second.run_id, timeout=10)
            assert "is already used by another run" in result

    run(body)


class FlakyStore(SQLiteStore):
    """A real SQLite store whose first journal write fails like a disk error."""

    failures = 1

    async def record(self, lease: Lease, entries: Any) -> bool:
        if self.failures:
            self.failures -= 1
            raise OSError("disk I/O error (simulated)")
        return await super().record(lease, entries)

    def record_soon(self, lease: Lease, entries: Any) -> asyncio.Future[bool]:
        if self.failures:
            self.failures -= 1
            failed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            failed.set_exception(OSError("disk I/O error (simulated)"))
            return failed
        return super().record_soon(lease, entries)


executions: list[int] = []


@legato.step
async def once() -> int:
    executions.append(7)
    return 7


@legato.workflow
async def one_step() -> int:
    return await once()


def test_a_store_failure_releases_the_run_instead_of_failing_it(tmp_path: Path) -> None:
    async def body() -> None:
        store = FlakyStore(f"sqlite:///{tmp_path / 'flaky.db'}")
        await store.open()
        try:
            async with running_worker(store) as (_, client):
                executions.clear()
                handle = await client.start(one_step)
                assert await client.result(handle.run_id, timeout=10) == 7
                assert store.failures == 0
                # The result write failed, so the step ran again (at-least-once) and the
                # run completed instead of failing.
                assert executions == [7, 7]
                (entry,) = await client.journal(handle.run_id)
                assert isinstance(entry, JournalEntry) and entry.output == "7"
        finally:
            await store.close()

    run(body)


@legato.workflow
async def idles_until_go() -> str:
    await legato.wait_for_signal("go")
    return "went"


def test_runs_that_left_memory_leave_nothing_behind(db_url: str) -> None:
    """A worker serves for months: a run that left memory must not keep its objects alive."""
    import gc

    from legato.runtime.context import WorkflowContext

    def contexts() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, WorkflowContext))

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            before = contexts()
            handles = [await client.start(idles_until_go) for _ in range(20)]
            for h in handles:
                await wait_until(status_is(client, h.run_id, RunStatus.WAITING))
            await wait_until(lambda: not worker.executions)
            # suspended: nothing of them is held (freed within a loop turn or two)
            await wait_until(lambda: contexts() <= before, timeout=10)
            for h in handles:
                await client.signal(h.run_id, "go")
            for h in handles:
                assert await client.result(h.run_id, timeout=20) == "went"
            await wait_until(lambda: not worker.executions)
            # finished: nothing of them is held (freed within a loop turn or two)
            await wait_until(lambda: contexts() <= before, timeout=10)

    run(body)
