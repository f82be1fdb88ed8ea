"""Review findings for the resident-runs change (each test fails on the reviewed HEAD).

No test measures time: each waits for a condition (with a deadline) and asserts an
outcome.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import legato
from legato import RunStatus
from legato.runtime.context import WorkflowContext
from legato.testing import VirtualClock
from tests.helpers import run, running_worker, status_is, wait_until

events: list[str] = []
gates: dict[str, asyncio.Event] = {}


@pytest.fixture(autouse=True)
def _fresh() -> None:
    events.clear()
    gates.clear()


def contexts() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, WorkflowContext))


# -- 1. a run with a deadline keeps its whole context alive after it finished -------------
@legato.workflow(timeout=3600)
async def rf_quick_with_deadline() -> str:
    return "done"


def test_a_finished_run_with_a_timeout_leaves_nothing_behind(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            before = contexts()
            for i in range(5):
                await client.start(rf_quick_with_deadline, run_id=f"dl-{i}")
            for i in range(5):
                assert await client.result(f"dl-{i}", timeout=20) == "done"
            await wait_until(lambda: not worker.executions)
            # finished: nothing of them is held (freed within a loop turn or two)
            await wait_until(lambda: contexts() <= before, timeout=10)

    run(body)


# -- 2. a run evicted in a long durable sleep stays in memory until the sleep ends ---------
@legato.workflow
async def rf_sleeps_an_hour() -> str:
    await legato.sleep(3600)
    return "slept"


def test_a_run_evicted_in_a_long_sleep_leaves_nothing_behind(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            before = contexts()
            for i in range(5):
                await client.start(rf_sleeps_an_hour, run_id=f"nap-{i}")
            for i in range(5):
                await wait_until(status_is(client, f"nap-{i}", RunStatus.WAITING))
            await wait_until(lambda: not worker.executions)
            # suspended: nothing of them is held (freed within a loop turn or two)
            await wait_until(lambda: contexts() <= before, timeout=10)

    run(body)


# -- 3. a cancel during a short (in-memory) back-off does not stop the next attempt --------
@legato.step(retry=legato.Retry(max_attempts=3, initial_interval=1.5, jitter=0))
async def rf_flaky() -> str:
    events.append(f"attempt:{legato.step_info().attempt}")
    if legato.step_info().attempt == 1:
        raise RuntimeError("first attempt fails")
    return "second attempt ran"


@legato.workflow
async def rf_retries_a_flaky_step() -> str:
    return await rf_flaky()


def test_a_cancel_during_a_short_backoff_starts_no_further_attempt(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            await client.start(rf_retries_a_flaky_step, run_id="backoff")

            async def first_failed() -> bool:
                journal = await client.journal("backoff")
                return any(e.attempt_list() for e in journal)  # attempt 1's failure recorded

            await wait_until(first_failed)  # now in the 1.5 s back-off, in memory
            assert events == ["attempt:1"]
            await client.cancel("backoff")
            record = await client.wait("backoff", timeout=30)
            assert (record.status, events) == (RunStatus.CANCELLED, ["attempt:1"])

    run(body)


# -- 4. a run timeout during a graceful stop ends the run with no compensation ----------------
@legato.step
async def rf_undo_booking() -> None:
    events.append("undo")


@legato.step(compensate=rf_undo_booking)
async def rf_book() -> str:
    events.append("book")
    return "booked"


@legato.step
async def rf_held() -> str:
    events.append("held:started")
    await gates["held"].wait()
    return "held"


@legato.workflow(timeout=100)
async def rf_books_then_waits_beside_a_step() -> None:
    await rf_book()
    await asyncio.gather(legato.sleep(3600), rf_held())


def test_a_timeout_during_a_graceful_stop_still_compensates(db_url: str) -> None:
    async def body() -> None:
        gates["held"] = asyncio.Event()
        clock = VirtualClock()
        async with running_worker(db_url, clock=clock) as (worker, client):
            await client.start(rf_books_then_waits_beside_a_step, run_id="stop-timeout")
            await wait_until(lambda: "held:started" in events)
            worker.stop()  # graceful: the step in flight is waited for
            clock.advance(200)  # the run's timeout passes while the worker drains

            async def ended_or_released() -> bool:
                status = (await client.get("stop-timeout")).status
                return status in (RunStatus.FAILED, RunStatus.PENDING)

            await wait_until(ended_or_released, timeout=30)  # the drain does not hang
            record = await client.get("stop-timeout")
        if record.status is not RunStatus.FAILED:  # released: let another worker end it
            async with running_worker(db_url, clock=clock) as (_w, client):
                record = await client.wait("stop-timeout", timeout=30)
        error = json.loads(record.error or "{}")
        assert record.status is RunStatus.FAILED and error["type"] == "RunTimeout"
        assert "undo" in events, (events, error)  # the booking was rolled back

    run(body)


# -- 5. a cancel during a child's retry back-off still starts the next child ----------------
@legato.workflow
async def rf_failing_child() -> None:
    events.append("child:ran")
    raise RuntimeError("the child fails")


@legato.workflow
async def rf_retries_a_child() -> None:
    await legato.child(
        rf_failing_child, retry=legato.Retry(max_attempts=3, initial_interval=1.5, jitter=0)
    )


def test_a_cancel_during_a_child_retry_backoff_starts_no_new_child(db_url: str) -> None:
    """The cancel must land inside the parent's 1.5 s back-off (in memory). On a loaded
    machine the back-off can end before the test has seen the first child fail; such a
    try proves nothing either way (its second child started before the cancel was sent)
    and the scenario is tried again with a new parent. A second child started after the
    cancel is the bug."""

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            for attempt in range(5):
                parent = f"parent-{attempt}"
                await client.start(rf_retries_a_child, run_id=parent)

                async def first_child_failed(parent: str = parent) -> bool:
                    return any(
                        r.run_id == f"{parent}:1" and r.status is RunStatus.FAILED
                        for r in await client.list(limit=1000)
                    )

                await wait_until(first_child_failed)
                cancelled_at = time.time()
                await client.cancel(parent)
                record = await client.wait(parent, timeout=30)
                assert record.status is RunStatus.CANCELLED
                children = [
                    r for r in await client.list(limit=1000) if r.run_id.startswith(f"{parent}:")
                ]
                late = [r.run_id for r in children if r.created_at >= cancelled_at]
                assert late == []  # no retried child after the cancel
                if len(children) == 1:
                    return  # the cancel came during the back-off, and no child followed
            raise AssertionError("the back-off always ended before the cancel could be sent")

    run(body)


# -- 6. a graceful stop stops renewing leases while it waits for steps in flight -------------
@legato.workflow
async def rf_one_held_step() -> str:
    return await rf_held()


def test_a_graceful_stop_keeps_the_lease_of_a_step_it_waits_for(db_url: str) -> None:
    async def body() -> None:
        gates["held"] = asyncio.Event()
        async with running_worker(db_url, lease_seconds=1.0) as (worker, client):
            await client.start(rf_one_held_step, run_id="drain")
            await wait_until(lambda: "held:started" in events)
            worker.stop()  # graceful: the step in flight finishes and is recorded
            expires = (await client.get("drain")).lease_expires_at
            assert expires is not None
            await wait_until(lambda: time.time() > expires + 1.0, timeout=10)
            record = await client.get("drain")
            gates["held"].set()
            # The worker still owns the run it is draining: its lease was renewed.
            assert record.lease_expires_at is not None
            assert record.lease_expires_at > expires, (expires, record.lease_expires_at)

    run(body)


# -- 7. a run waiting in memory makes an otherwise idle worker claim 20 times a second -------
@legato.workflow
async def rf_waits_for_go() -> str:
    await legato.wait_for_signal("go")
    return "went"


def test_a_run_waiting_in_memory_does_not_make_the_worker_claim_in_a_loop(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, evict_after=60) as (worker, client):
            await client.start(rf_waits_for_go, run_id="resident")
            await wait_until(lambda: worker.runs_claimed == 1)
            await wait_until(lambda: any(e.ctx.waits for e in worker.executions.values()))
            claims: list[float] = []
            original = worker.store.claim_runs

            async def counted(*args: Any, **kwargs: Any) -> Any:
                claims.append(time.monotonic())
                return await original(*args, **kwargs)

            worker.store.claim_runs = counted  # type: ignore[method-assign]
            start = time.monotonic()
            await wait_until(lambda: time.monotonic() > start + 2.0, timeout=10)
            # Nothing was committed meanwhile: an idle worker claims about once a second
            # (docs/architecture.md); each SQLite claim is a BEGIN IMMEDIATE transaction.
            assert len(claims) <= 4, f"{len(claims)} claims in 2 s with nothing to claim"
            await client.signal("resident", "go")
            assert await client.result("resident", timeout=20) == "went"

    run(body)


# -- 8. a workflow that keeps going after CancelledError hangs the whole worker ---------------
@legato.workflow
async def rf_stubborn() -> str:
    while True:
        try:
            return str(await legato.wait_for_signal("go"))
        except asyncio.CancelledError:
            continue  # keeps going while the run leaves memory


STUBBORN = """
import asyncio, sys
from tests.helpers import running_worker, wait_until
from tests.integration.test_review_findings import rf_stubborn

async def main(url):
    async with running_worker(url) as (worker, client):
        await client.start(rf_stubborn, run_id="stubborn")
        await wait_until(lambda: worker.runs_claimed == 1)
        await wait_until(lambda: not worker.executions, timeout=20)
        print((await client.get("stubborn")).status.value, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_a_workflow_that_swallows_cancelled_error_does_not_hang_the_worker(db_url: str) -> None:
    # In a process of its own: the worker's event loop would be blocked for good.
    try:
        done = subprocess.run(
            [sys.executable, "-c", STUBBORN, db_url],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=Path(__file__).resolve().parents[2],
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the worker's loop hung: it never left the run that ignores CancelledError")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in ("waiting", "parked"), done.stdout


# -- 9. asyncio.timeout firing while a step's result is being written: the replay differs ----
@legato.step
async def rf_quick() -> str:
    return "quick"


@legato.step
async def rf_on_time() -> None:
    events.append("on time")


@legato.step
async def rf_too_late() -> None:
    events.append("too late")


@legato.workflow
async def rf_step_under_asyncio_timeout() -> str:
    try:
        async with asyncio.timeout(10):
            await rf_quick()
        await rf_on_time()
        branch = "in time"
    except TimeoutError:
        await rf_too_late()
        branch = "timed out"
    await legato.wait_for_signal("next")  # leaves memory; the signal replays it
    return branch


def test_a_timeout_during_a_steps_result_write_replays_the_same_way(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        writing, release = asyncio.Event(), asyncio.Event()
        async with running_worker(db_url, clock=clock) as (worker, client):
            original = worker.store.record_soon

            def slow_result_write(lease: Any, entries: Any) -> Any:
                write = original(lease, entries)  # committed anyway
                if not any(e.name == rf_quick.name and e.output for e in entries):
                    return write
                writing.set()
                held = asyncio.get_running_loop().create_future()

                async def hold() -> None:
                    await release.wait()
                    held.set_result(await write)

                holders.add(asyncio.ensure_future(hold()))
                return held

            holders: set[Any] = set()
            worker.store.record_soon = slow_result_write  # type: ignore[method-assign]
            await client.start(rf_step_under_asyncio_timeout, run_id="t-write")
            await wait_until(writing.is_set)
            clock.advance(20)  # the asyncio.timeout fires while the result is written
            release.set()
            await wait_until(status_is(client, "t-write", RunStatus.WAITING))
            await client.signal("t-write", "next")
            record = await client.wait("t-write", timeout=30)
            # The step's result was written, so it stands: the workflow went on as the
            # replay (after the signal) does, and the two agree on the branch.
            assert record.status is RunStatus.COMPLETED, record.error
            assert json.loads(record.output or "null") == "in time"
            assert "on time" in events and "too late" not in events

    run(body)


# -- 10. asyncio.timeout firing while a signal is being taken: the signal is lost -------------
@legato.workflow
async def rf_signal_under_asyncio_timeout() -> Any:
    try:
        async with asyncio.timeout(10):
            return ["first wait", await legato.wait_for_signal("s")]
    except TimeoutError:
        return ["second wait", await legato.wait_for_signal("s")]


def test_a_timeout_during_a_signal_take_does_not_lose_the_signal(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        taking, release = asyncio.Event(), asyncio.Event()
        async with running_worker(db_url, clock=clock) as (worker, client):
            original = worker.store.take_signal

            async def slow_take(*args: Any, **kwargs: Any) -> Any:
                held, signal = await original(*args, **kwargs)  # consumed and recorded
                if signal is not None:
                    taking.set()
                    await release.wait()
                return held, signal

            worker.store.take_signal = slow_take  # type: ignore[method-assign]
            await client.start(rf_signal_under_asyncio_timeout, run_id="t-take")

            async def waiting() -> bool:
                return any(
                    e.kind is legato.EntryKind.SIGNAL for e in await client.journal("t-take")
                )

            await wait_until(waiting)
            await client.signal("t-take", "s", "payload")
            await wait_until(taking.is_set)
            clock.advance(20)  # the asyncio.timeout fires while the signal is taken
            release.set()

            # Either wait may have it, but the one signal sent must reach the workflow.
            async def settled() -> bool:
                status = (await client.get("t-take")).status
                return status is RunStatus.COMPLETED or (
                    status is RunStatus.WAITING and not worker.executions
                )

            await wait_until(settled, timeout=15)
            record = await client.get("t-take")
            journal = [
                (e.seq, e.kind.value, e.status.value) for e in await client.journal("t-take")
            ]
            assert record.status is RunStatus.COMPLETED, (record.status, journal)
            # A signal taken is a signal delivered: the first wait got it.
            assert json.loads(record.output or "null") == ["first wait", "payload"]

    run(body)


# -- 11. the offline replay check cannot replay a run whose asyncio.timeout expired -----------
@legato.workflow
async def rf_gives_up_on_a_signal() -> str:
    try:
        async with asyncio.timeout(0.2):
            await legato.wait_for_signal("never")
    except TimeoutError:
        pass
    return await rf_quick()


def test_a_run_with_an_abandoned_wait_passes_the_replay_check(db_url: str) -> None:
    from legato.cli.history import export_history
    from legato.testing import assert_replays

    async def body() -> Any:
        async with running_worker(db_url) as (_worker, client):
            await client.start(rf_gives_up_on_a_signal, run_id="gave-up")
            assert await client.result("gave-up", timeout=30) == "quick"
            statuses = [e.status for e in await client.journal("gave-up")]
            assert legato.EntryStatus.ABANDONED in statuses
            return await export_history(client, "gave-up")

    history = run(body)
    report = assert_replays(history)  # the worker replays it fine; so must the check
    assert report.outcome == "completed"
