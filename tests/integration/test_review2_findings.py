"""Second review of the runtime change (the cheaper bridge and 1172d75's fixes).

Each test fails on the reviewed HEAD. No test measures time: each waits for a condition
(with a deadline) and asserts an outcome.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import legato
from legato import RunStatus
from legato.errors import StoreError
from legato.store.base import Lease
from legato.store.sqlite.store import SQLiteStore
from legato.testing import VirtualClock
from tests.helpers import run, running_worker, status_is, wait_until

events: list[str] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    events.clear()


# -- 1. a queued write that fails at once reaches workflow code and fails the run ----------
class RefusesOneQueuedWrite(SQLiteStore):
    """A real SQLite store whose first queued journal write fails as it is queued (as
    ``_submit`` does when the store is not open)."""

    failures = 1

    def record_nowait(self, lease: Lease, entries: Any, on_failure: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("the store is not open (simulated)")
        super().record_nowait(lease, entries, on_failure)


@legato.workflow
async def r2_naps() -> str:
    await legato.sleep(0.01)  # its waiting entry is a queued write
    return "slept"


def test_a_queued_write_that_fails_at_once_does_not_fail_the_run(tmp_path: Path) -> None:
    async def body() -> None:
        store = RefusesOneQueuedWrite(f"sqlite:///{tmp_path / 'refuses.db'}")
        await store.open()
        try:
            async with running_worker(store) as (_, client):
                await client.start(r2_naps, run_id="nap")
                record = await client.wait("nap", timeout=30)
                # A store failure is not the workflow's fault: the run is released and
                # retried (as a failing record_soon is), never failed with StoreError.
                assert record.status is RunStatus.COMPLETED, (record.status, record.error)
        finally:
            await store.close()

    run(body)


# -- 2. a sync step raising StopIteration never ends: the run hangs in memory for ever -----
@legato.step
def r2_next_of_empty() -> int:
    events.append("ran")
    return next(iter([]))  # raises StopIteration


@legato.workflow
async def r2_calls_next() -> str:
    try:
        await r2_next_of_empty()
    except legato.StepError as exc:
        return f"failed: {exc.error_type}"
    return "returned"


def test_a_sync_step_raising_stop_iteration_ends(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            await client.start(r2_calls_next, run_id="stopiter")
            await wait_until(lambda: "ran" in events)

            async def ended() -> bool:
                return (await client.get("stopiter")).status.is_terminal

            try:
                await wait_until(ended, timeout=30)  # as the suite's other run waits
                # Its end is committed before the worker lets go of it: a loaded machine
                # can show the status a moment before the execution leaves memory.
                await wait_until(lambda: "stopiter" not in worker.executions, timeout=30)
            finally:
                execution = worker.executions.get("stopiter")
                pending = execution.pending if execution is not None else None
                for e in list(worker.executions.values()):
                    e.lose()  # let the worker stop (the hung step never returns)
            assert pending is None, f"the run still waits on {pending} operation(s)"

    run(body)


# -- 3. the replay clock, moved on to an asyncio timer, ends a durable sleep still pending --
@legato.workflow
async def r2_gives_up_then_naps() -> str:
    try:
        async with asyncio.timeout(5):
            await legato.wait_for_signal("never")
    except TimeoutError:
        events.append("gave-up")
    await legato.sleep(3)  # pending in the history: due 3 s after the give-up
    return "done"


def test_the_replay_clock_does_not_end_a_pending_sleep(db_url: str) -> None:
    from legato.cli.history import export_history
    from legato.testing import assert_replays

    async def body() -> Any:
        clock = VirtualClock()
        async with running_worker(db_url, clock=clock) as (worker, client):
            await client.start(r2_gives_up_then_naps, run_id="naps")

            def waits_for_signal() -> bool:
                execution = worker.executions.get("naps")
                return execution is not None and bool(execution.ctx.waits)

            await wait_until(waits_for_signal)
            clock.advance(5)  # the asyncio.timeout fires
            await wait_until(lambda: "gave-up" in events)
            await wait_until(status_is(client, "naps", RunStatus.WAITING))  # in sleep(3)
            return await export_history(client, "naps")

    history = run(body)
    report = assert_replays(history)
    # The run waits in its sleep (the history's clock is before its end): so must the
    # replay find it, not run past it (its asyncio.timeout(5) is re-armed from the
    # history's last moment and the clock moved on to it, past the sleep's end).
    assert report.outcome == "in_progress", report


# -- 4. an asyncio.timeout that fires while a wait looks for its signal (none there) -------
@legato.workflow
async def r2_times_out_while_looking() -> str:
    try:
        async with asyncio.timeout(5):
            await legato.wait_for_signal("absent")
    except TimeoutError:
        return "gave up"
    return "got it"


def test_a_timeout_while_a_wait_looks_for_an_absent_signal_still_fires(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        looking, release = asyncio.Event(), asyncio.Event()
        async with running_worker(db_url, clock=clock) as (worker, client):
            original = worker.store.take_signal

            async def slow_take(*args: Any, **kwargs: Any) -> Any:
                looking.set()
                await release.wait()  # the timeout fires during this look
                return await original(*args, **kwargs)

            worker.store.take_signal = slow_take  # type: ignore[method-assign]
            await client.start(r2_times_out_while_looking, run_id="looking")
            await wait_until(looking.is_set)
            clock.advance(10)
            release.set()  # no signal was taken: the timeout's cancellation stands
            assert await client.result("looking", timeout=30) == "gave up"

    run(body)
