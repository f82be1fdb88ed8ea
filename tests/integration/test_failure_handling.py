"""Failure handling: retry policies and their record, durable back-off, cancellation with
cleanup, compensation and children, pause/resume, run timeouts, heartbeats, hard step
timeouts, on_failure handlers, redrive and reset."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

import legato
from legato import EntryKind, EntryStatus, RunStatus
from legato.testing import VirtualClock
from tests.helpers import run, running_worker, status_is, wait_until

calls: dict[str, int] = defaultdict(int)
events: list[tuple[str, str]] = []  # (key, what happened), in order


# -- retries ---------------------------------------------------------------------------------
@legato.step(retry=legato.Retry(max_attempts=3, initial_interval=0.2, backoff=2.5, jitter=0))
def twice_then_ok(key: str) -> str:
    calls[key] += 1
    if calls[key] <= 2:
        raise ConnectionError(f"attempt {calls[key]} refused")
    return "ok"


@legato.workflow
async def retried(key: str) -> str:
    return await twice_then_ok(key)


def test_three_attempts_are_recorded_with_growing_delays(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(retried, f"grow-{db_url}")
            assert await client.result(handle.run_id, timeout=20) == "ok"
            (entry,) = await client.journal(handle.run_id)
        assert entry.attempts == 3 and entry.status is EntryStatus.COMPLETED
        log = entry.attempt_list()
        assert [a["attempt"] for a in log] == [1, 2, 3]
        assert [a.get("error", {}).get("type") for a in log] == [
            "builtins.ConnectionError",
            "builtins.ConnectionError",
            None,
        ]
        assert log[0]["error"]["message"] == "attempt 1 refused"
        first_wait = log[1]["started_at"] - log[0]["ended_at"]
        second_wait = log[2]["started_at"] - log[1]["ended_at"]
        assert first_wait >= 0.2 and second_wait >= 0.5  # 0.2 s, then 0.2 * 2.5
        assert second_wait > first_wait

    run(body)


@legato.step(retry=legato.Retry(max_attempts=2, initial_interval=timedelta(minutes=10)))
def fails_once(key: str) -> str:
    calls[key] += 1
    if calls[key] == 1:
        raise TimeoutError("upstream timed out")
    return f"ok on attempt {legato.step_info().attempt}"


@legato.workflow
async def long_backoff(key: str) -> str:
    return await fails_once(key)


def test_a_ten_minute_backoff_is_a_durable_timer(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        async with running_worker(db_url, clock=clock) as (worker, client):
            handle = await client.start(long_backoff, f"ten-{db_url}")
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            record = await client.get(handle.run_id)
            (entry,) = await client.journal(handle.run_id)
            assert worker.executions == {}  # no worker holds the run during the back-off
            assert record.owner is None
            assert entry.status is EntryStatus.WAITING and entry.attempts == 1
            assert record.wake_at == pytest.approx(clock.now() + 600, abs=60)  # ±10% jitter
            clock.advance(timedelta(minutes=11))
            assert await client.result(handle.run_id, timeout=20) == "ok on attempt 2"
            (entry,) = await client.journal(handle.run_id)
            assert [a["attempt"] for a in entry.attempt_list()] == [1, 2]

    run(body)


@legato.workflow
async def child_that_fails_first(key: str) -> str:
    calls[key] += 1
    if calls[key] == 1:
        raise RuntimeError("child attempt 1 failed")
    return f"child ok after {calls[key]}"


@legato.workflow
async def parent_retrying_child(key: str) -> str:
    retry = legato.Retry(max_attempts=2, initial_interval=0.01)
    return await legato.child(child_that_fails_first, key, retry=retry)


def test_a_child_run_is_retried_as_a_new_run(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(parent_retrying_child, f"child-{db_url}")
            assert await client.result(handle.run_id, timeout=20) == "child ok after 2"
            (entry,) = await client.journal(handle.run_id)
            assert entry.attempts == 2 and entry.child_run_id == f"{handle.run_id}:1#2"
            first = await client.get(f"{handle.run_id}:1")
            assert first.status is RunStatus.FAILED

    run(body)


# -- cancellation, cleanup, compensation, children ------------------------------------------
gates: dict[str, threading.Event] = {}


@legato.step
def undo_book(key: str) -> None:
    events.append((key, "undo_book"))


@legato.step(compensate=undo_book)
def book(key: str) -> str:
    events.append((key, "book"))
    return "booked"


@legato.step
def slow(key: str) -> str:
    events.append((key, "slow started"))
    gates[key].wait(20)
    events.append((key, "slow finished"))
    return "slow"


@legato.step
def cleanup(key: str) -> None:
    events.append((key, "cleanup"))


@legato.workflow
async def waits_forever(key: str) -> None:
    await legato.wait_for_signal("never")


@legato.workflow
async def cancel_mid_way(key: str, during: str) -> None:
    await book(key)
    try:
        child = legato.child(waits_forever, key)
        if during == "step":
            await asyncio.gather(slow(key), child)
        else:
            await asyncio.gather(legato.sleep(timedelta(hours=5)), child)
    finally:
        await cleanup(key)


@pytest.mark.parametrize("during", ["step", "sleep"])
def test_cancel_runs_cleanup_and_compensation_and_cancels_children(
    db_url: str, during: str
) -> None:
    key = f"cancel-{during}-{db_url}"
    gates[key] = threading.Event()

    async def body() -> None:
        async with running_worker(db_url, lease_seconds=1.5) as (_, client):
            handle = await client.start(cancel_mid_way, key, during)
            child_id = f"{handle.run_id}:3.1"
            if during == "step":
                await wait_until(lambda: (key, "slow started") in events)
            await wait_until(_waits(client, child_id))
            await client.cancel(handle.run_id)
            if during == "step":
                # The cancel reaches the workflow while the (sync) step still runs: the
                # step is told (legato.heartbeat raises), the workflow does not wait for it.
                await wait_until(lambda: (key, "cleanup") in events)
                assert (key, "slow finished") not in events
            record = await client.wait(handle.run_id, timeout=20)
            gates[key].set()  # the abandoned thread ends; its result is ignored
            assert record.status is RunStatus.CANCELLED
            child = await client.wait(child_id, timeout=20)
            assert child.status is RunStatus.CANCELLED
            journal = await client.journal(handle.run_id)
        mine = [what for k, what in events if k == key and what != "slow finished"]
        expected = ["book", "cleanup", "undo_book"]
        if during == "step":
            expected = ["book", "slow started", "cleanup", "undo_book"]
        assert mine == expected
        rollback = [e.name for e in journal if e.kind is EntryKind.COMPENSATE]
        assert rollback == ["rollback", "undo_book"]  # the plan, then each compensation
        error = record.error_dict()
        assert error is not None and error["compensations"][0]["status"] == "completed"

    run(body)


def _waits(client: legato.AsyncClient, run_id: str) -> Any:
    async def check() -> bool:
        found = await client.list(status=RunStatus.WAITING, limit=1000)
        return any(r.run_id == run_id for r in found)

    return check


# -- pause and resume ------------------------------------------------------------------------
step_starts: dict[str, list[int]] = defaultdict(list)
first_step_gates: dict[str, asyncio.Event] = {}


@legato.step
async def paced(key: str, i: int) -> int:
    step_starts[key].append(i)
    if i == 0:  # held in flight until the test has seen the pause reach every run
        await first_step_gates[key].wait()
    return i


@legato.workflow(queue="batch")
async def ten_paced_steps(key: str) -> int:
    total = 0
    for i in range(10):
        total += await paced(key, i)
    return total


def test_pausing_a_queue_with_100_runs_in_flight_then_resuming(db_url: str) -> None:
    """Paused: the steps in flight finish, no new step starts, the runs are released.
    Resumed: every run finishes, each step having run once. The first step of every run
    is held until the pause has reached all of them, so the promise is checked on all
    100 runs whatever the machine's speed (no count depends on timing)."""
    key = f"pause-{db_url}"

    async def body() -> None:
        first_step_gates[key] = asyncio.Event()
        options = {"lease_seconds": 1.5, "queues": ["batch"], "concurrency": 200}
        async with running_worker(db_url, **options) as (worker, client):
            ids = [(await client.start(ten_paced_steps, key)).run_id for _ in range(100)]
            await wait_until(lambda: len(step_starts[key]) == 100, 60, "every first step")
            await client.pause(queue="batch")
            # Each run learns of the pause at its worker's next heartbeat.
            await wait_until(
                lambda: (
                    len(worker.executions) == 100
                    and all(e.stopping for e in worker.executions.values())
                ),
                60,
                "the pause reaches every run in memory",
            )
            first_step_gates[key].set()  # the steps in flight may finish now
            await wait_until(_none_running(client), 60, "every paused run released")
            assert sorted(step_starts[key]) == [0] * 100  # no second step started
            runs = await client.list(workflow=ten_paced_steps.name, limit=1000)
            assert {r.status for r in runs} == {RunStatus.PENDING}
            assert all(r.owner is None for r in runs)
            assert [p.name for p in await client.pauses()] == ["batch"]
            # Still paused after a claim round and a heartbeat: this is a window in which
            # a worker that ignored the pause would claim the runs again.
            await asyncio.sleep(1.0)
            assert sorted(step_starts[key]) == [0] * 100
            await client.resume(queue="batch")
            for run_id in ids:
                assert await client.result(run_id, timeout=120) == 45
            assert len(step_starts[key]) == 1000  # each step once: nothing re-ran or was lost

    run(body)


def _none_running(client: legato.AsyncClient) -> Any:
    async def check() -> bool:
        return await client.still_running(queue="batch") == 0

    return check


@legato.workflow
async def two_signals(key: str) -> str:
    await legato.wait_for_signal("a")
    await book(key)
    return "done"


def test_a_paused_run_is_not_woken_until_resumed(db_url: str) -> None:
    key = f"pause-run-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(two_signals, key)
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            await client.pause(handle.run_id)
            await client.signal(handle.run_id, "a")
            # A window, not a pause to settle: a paused run that took its signal would
            # book within it (a claim round and two heartbeats).
            await asyncio.sleep(1.0)
            assert (key, "book") not in events
            assert (await client.get(handle.run_id)).paused
            await client.resume(handle.run_id)
            assert await client.result(handle.run_id, timeout=20) == "done"

    run(body)


# -- timeouts and heartbeats -----------------------------------------------------------------
@legato.workflow(timeout=timedelta(hours=1))
async def bounded(key: str) -> str:
    await book(key)
    try:
        await legato.sleep(timedelta(hours=3))
    finally:
        await cleanup(key)
    return "never"


def test_a_run_timeout_stops_the_run_and_compensates(db_url: str) -> None:
    key = f"bounded-{db_url}"

    async def body() -> None:
        clock = VirtualClock(start=time.time())
        async with running_worker(db_url, clock=clock) as (_, client):
            handle = await client.start(bounded, key)
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            record = await client.get(handle.run_id)
            assert record.deadline_at is not None
            assert record.wake_at == pytest.approx(record.deadline_at)  # wakes at the timeout
            clock.advance(timedelta(hours=1, seconds=1))
            record = await client.wait(handle.run_id, timeout=20)
        assert record.status is RunStatus.FAILED
        error = record.error_dict()
        assert error is not None and error["type"] == "RunTimeout"
        assert [w for k, w in events if k == key] == ["book", "cleanup", "undo_book"]

    run(body)


@legato.step(heartbeat_timeout=0.5, retry=legato.Retry(max_attempts=2, initial_interval=0.01))
def beats(key: str, total: int) -> str:
    """Attempt 1 goes quiet after two beats; attempt 2 resumes from the recorded progress."""
    info = legato.step_info()
    start = info.heartbeat_details["done"] if info.heartbeat_details else 0
    for done in range(start, total):
        legato.heartbeat({"done": done})
        if info.attempt == 1 and done == 2:
            time.sleep(1.5)  # the behaviour under test: hung, no beats
            return "hung attempt"
        time.sleep(0.3)  # the step's work between two beats
    return f"resumed at {start}"


@legato.workflow
async def beating(key: str) -> str:
    return await beats(key, 4)


def test_a_step_that_stops_heartbeating_is_retried_with_its_progress(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(beating, f"beat-{db_url}")
            assert await client.result(handle.run_id, timeout=20) == "resumed at 2"
            (entry,) = await client.journal(handle.run_id)
        first = entry.attempt_list()[0]
        assert first["error"]["type"] == "legato.errors.StepTimeout"
        assert "no heartbeat for 0.5s" in first["error"]["message"]

    run(body)


@legato.step(timeout=2, kill_on_timeout=True)
def hangs(path: str) -> str:
    import os

    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)
    return "unreachable"


@legato.workflow
async def hard_timeout(path: str) -> str:
    try:
        return await hangs(path)
    except legato.StepError as exc:
        return exc.error_type


def test_kill_on_timeout_kills_the_process_running_a_sync_step(db_url: str, tmp_path: Any) -> None:
    import os

    pid_file = tmp_path / "pid"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(hard_timeout, str(pid_file))
            result = await client.result(handle.run_id, timeout=20)
        assert result == "legato.errors.StepTimeout"
        pid = int(pid_file.read_text())
        assert pid != os.getpid()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the child process is gone, not left sleeping

    run(body)


# -- on_failure handlers ---------------------------------------------------------------------
alerts: list[legato.RunFailure] = []


@legato.workflow
async def alert_ops(failure: legato.RunFailure) -> str:
    alerts.append(failure)
    return f"paged about {failure.run_id}"


@legato.step
def always_fails(key: str) -> None:
    raise ValueError(f"bad record {key}")


@legato.workflow(on_failure=alert_ops)
async def watched(key: str) -> None:
    await book(key)
    await always_fails(key)


def test_a_failed_run_starts_its_on_failure_handler(db_url: str) -> None:
    key = f"watched-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(watched, key)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.FAILED
            handler_id = f"{handle.run_id}:on_failure"
            assert await client.result(handler_id, timeout=20) == f"paged about {handle.run_id}"
        failure = next(a for a in alerts if a.run_id == handle.run_id)
        assert failure.workflow == watched.name
        assert failure.step == "always_fails" and failure.seq == "2"
        assert failure.step_error is not None
        assert failure.step_error["type"] == "builtins.ValueError"
        assert f"bad record {key}" in failure.message
        assert failure.traceback is not None and "Traceback" in failure.traceback
        assert failure.input == [[key], {}]

    run(body)


# -- redrive ---------------------------------------------------------------------------------
@legato.step
def numbered(key: str, i: int) -> int:
    calls[f"{key}:{i}"] += 1
    if i == 5 and calls[f"{key}:fixed"] == 0:
        raise KeyError("bug in step 5")
    return i


@legato.workflow
async def eight_steps(key: str) -> int:
    total = 0
    for i in range(1, 9):
        total += await numbered(key, i)
    return total


def test_retry_resumes_from_the_failed_step_and_reset_reruns_from_a_position(
    db_url: str,
) -> None:
    key = f"redrive-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(eight_steps, key)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.FAILED
            with pytest.raises(legato.InvalidInput, match="not a position"):
                await client.reset(handle.run_id, "x")
            calls[f"{key}:fixed"] = 1  # "deploy the fix"
            again = await client.retry(handle.run_id)
            assert again.status is RunStatus.PENDING and again.redrives == 1
            assert await client.result(handle.run_id, timeout=20) == 36
            assert [calls[f"{key}:{i}"] for i in range(1, 9)] == [1, 1, 1, 1, 2, 1, 1, 1]
            with pytest.raises(legato.Conflict, match="only failed or parked"):
                await client.retry(handle.run_id)
            await client.reset(handle.run_id, 7)
            assert await client.result(handle.run_id, timeout=20) == 36
            assert [calls[f"{key}:{i}"] for i in range(1, 9)] == [1, 1, 1, 1, 2, 1, 2, 2]
            with pytest.raises(legato.InvalidInput, match="no position 42"):
                await client.reset(handle.run_id, 42)
            assert (await client.get(handle.run_id)).redrives == 2

    run(body)


fixed: set[str] = set()  # keys whose "bug" is fixed: the step then succeeds


@legato.step
def charge_card(key: str) -> str:
    calls[f"{key}:charge"] += 1
    if key not in fixed:
        raise ConnectionError("the card service rejected the request (bug)")
    return "receipt-1"


@legato.step
def alert_team(key: str) -> None:
    calls[f"{key}:alert"] += 1


@legato.step
def step_named(key: str, name: str) -> str:
    calls[f"{key}:{name}"] += 1
    return name


@legato.workflow
async def charge_or_alert(key: str) -> list[str]:
    await step_named(key, "reserve")
    try:
        receipt = await charge_card(key)
    except legato.StepError:
        await alert_team(key)  # the commonest handler: tell someone, then fail the run
        raise
    return [receipt, await step_named(key, "ship")]


def test_retry_after_a_fix_replays_a_handled_then_re_raised_failure(db_url: str) -> None:
    key = f"alert-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(charge_or_alert, key)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.FAILED
            assert calls[f"{key}:alert"] == 1
            fixed.add(key)  # "deploy the fix"
            await client.retry(handle.run_id)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.COMPLETED, record.error  # not parked
            assert await client.result(handle.run_id) == ["receipt-1", "ship"]
            counts = [calls[f"{key}:{n}"] for n in ("reserve", "charge", "alert", "ship")]
            assert counts == [1, 2, 1, 1]  # the alert ran once, before the fix
            journal = await client.journal(handle.run_id)
            assert [(e.seq, e.name) for e in journal] == [
                ("1", "step_named"),
                ("2", "charge_card"),
                ("3", "step_named"),
            ]

    run(body)


@legato.workflow
async def parallel_charge_or_alert(key: str) -> list[str]:
    async def pay() -> str:
        await step_named(key, "reserve")
        return await charge_card(key)

    async def pack() -> str:
        await step_named(key, "pick")
        return await step_named(key, "pack")

    try:
        receipt, packed = await asyncio.gather(pay(), pack())
    except legato.StepError:
        await alert_team(key)
        raise
    return [receipt, packed, await step_named(key, "ship")]


def test_retry_after_a_fix_keeps_a_parallel_sibling_and_drops_the_parents_handler(
    db_url: str,
) -> None:
    key = f"parallel-alert-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(parallel_charge_or_alert, key)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.FAILED
            assert (record.error_dict() or {})["failed_seq"] == "1.2"
            fixed.add(key)
            await client.retry(handle.run_id)
            assert await client.result(handle.run_id, timeout=20) == ["receipt-1", "pack", "ship"]
            names = ("reserve", "charge", "pick", "pack", "alert", "ship")
            # the sibling branch's completed steps were replayed, not run again
            assert [calls[f"{key}:{n}"] for n in names] == [1, 2, 1, 1, 1, 1]

    run(body)


def test_a_run_whose_compensations_ran_is_not_retried(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(watched, f"no-retry-{db_url}")
            await client.wait(handle.run_id, timeout=20)
            with pytest.raises(legato.Conflict, match="compensations"):
                await client.retry(handle.run_id)

    run(body)


@legato.step
def maybe_fails(key: str) -> str:
    calls[key] += 1
    if calls[key] == 1:
        raise ValueError("first try fails")
    return "ok"


@legato.workflow
async def handles_one_failure(key: str) -> str:
    with contextlib.suppress(legato.StepError):  # handled: the workflow goes on
        await maybe_fails(key)
    await always_fails(key)
    return "unreachable"


def test_retry_keeps_failures_the_workflow_handled(db_url: str) -> None:
    key = f"handled-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(handles_one_failure, key)
            await client.wait(handle.run_id, timeout=20)
            await client.retry(handle.run_id)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.FAILED  # always_fails still fails...
            assert calls[key] == 1  # ...but the handled failure was not run again
            journal = await client.journal(handle.run_id)
            assert [(e.seq, e.status) for e in journal] == [
                ("1", EntryStatus.FAILED),
                ("2", EntryStatus.FAILED),
            ]

    run(body)


# -- edge cases found in review ----------------------------------------------------------------
@legato.step(timeout=20, kill_on_timeout=True)
def in_a_process(label: str) -> str:
    return f"{label}@{legato.idempotency_key().rsplit(':', 1)[-1]}"


@legato.workflow
async def process_step_then_more(key: str) -> list[str]:
    first = await in_a_process("a")
    await legato.sleep(timedelta(hours=1))  # leave memory: the rest is a replay
    second = await in_a_process("b")
    await book(key)
    return [first, second]


def test_a_process_step_keeps_positions_and_knows_its_step_info(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        async with running_worker(db_url, clock=clock) as (_, client):
            handle = await client.start(process_step_then_more, f"proc-{db_url}")
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            clock.advance(timedelta(hours=2))
            assert await client.result(handle.run_id, timeout=20) == ["a@1", "b@3"]

    run(body)


@legato.workflow
async def gather_keeping_errors(key: str) -> list[str]:
    results = await asyncio.gather(
        always_fails(key), legato.wait_for_signal("go"), return_exceptions=True
    )
    return [type(r).__name__ if isinstance(r, Exception) else str(r) for r in results]


def test_gather_with_return_exceptions_and_a_failed_branch_still_leaves_memory(
    db_url: str,
) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start(gather_keeping_errors, f"gre-{db_url}")
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            assert worker.executions == {}
            await client.signal(handle.run_id, "go", "now")
            assert await client.result(handle.run_id, timeout=20) == ["StepError", "now"]

    run(body)


@legato.step
def slow_undo(key: str) -> None:
    events.append((key, "slow_undo started"))
    gates[key].wait(20)
    events.append((key, "slow_undo finished"))


@legato.step(compensate=undo_book)
def first_thing(key: str) -> str:
    return "first"


@legato.step(compensate=slow_undo)
def second_thing(key: str) -> str:
    return "second"


@legato.workflow
async def rolls_back_slowly(key: str) -> None:
    await first_thing(key)
    await second_thing(key)
    await always_fails(key)


def test_a_worker_stopping_mid_rollback_leaves_the_rest_to_the_next_worker(db_url: str) -> None:
    key = f"stop-mid-rollback-{db_url}"
    gates[key] = threading.Event()

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start(rolls_back_slowly, key)
            await wait_until(lambda: (key, "slow_undo started") in events)
            await client.cancel(handle.run_id)  # no effect: a rollback is not cut short
            worker.stop()  # graceful: the in-flight compensation finishes first
            # A window, not a pause to settle: a worker that released the run with its
            # compensation in flight would have done so within it.
            await asyncio.sleep(0.2)
            assert handle.run_id in worker.executions
            gates[key].set()
            await wait_until(lambda: not worker.executions)
            assert (await client.get(handle.run_id)).status is RunStatus.PENDING
        async with running_worker(db_url) as (_, client):
            record = await client.wait(handle.run_id, timeout=20)
        assert record.status is RunStatus.FAILED  # the failure, not the later cancel
        error = record.error_dict()
        assert error is not None and error["failed_seq"] == "3"
        assert [c["compensation"] for c in error["compensations"]] == ["slow_undo", "undo_book"]
        mine = [what for k, what in events if k == key]
        assert mine == ["slow_undo started", "slow_undo finished", "undo_book"]  # each once

    run(body)


@legato.workflow(timeout=timedelta(hours=1))
async def sleeps_past_its_timeout(key: str) -> str:
    await legato.sleep(timedelta(hours=3))
    return "woke"


def test_a_run_that_timed_out_can_be_retried_without_its_old_deadline(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock(start=time.time())
        async with running_worker(db_url, clock=clock) as (_, client):
            handle = await client.start(sleeps_past_its_timeout, f"late-{db_url}")
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            clock.advance(timedelta(hours=2))
            record = await client.wait(handle.run_id, timeout=20)
            assert (record.error_dict() or {}).get("type") == "RunTimeout"
        # the real clock is hours behind the virtual one: retry "after" the deadline
        again = await _retry_at(db_url, handle.run_id, clock.now())
        assert again.deadline_at is None
        async with running_worker(db_url, clock=clock) as (_, client):
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            clock.advance(timedelta(hours=4))
            assert await client.result(handle.run_id, timeout=20) == "woke"

    run(body)


async def _retry_at(db_url: str, run_id: str, now: float) -> legato.RunRecord:
    from legato.client.redrive import retry_plan
    from legato.store import open_store

    store = open_store(db_url)
    await store.open()
    try:
        run_record = await store.get_run(run_id)
        assert run_record is not None
        drop = retry_plan(run_record, await store.get_journal(run_id))
        return await store.redrive_run(run_id, run_record.status, drop, now)
    finally:
        await store.close()


@legato.workflow
async def handles_a_parallel_failure(key: str) -> str:
    try:
        await asyncio.gather(maybe_fails(key), cleanup(key))
    except legato.StepError:
        await cleanup(key)  # handled by the parent task
    await always_fails(key)
    return "unreachable"


def test_retry_keeps_a_parallel_failure_the_parent_handled(db_url: str) -> None:
    key = f"parallel-handled-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(handles_a_parallel_failure, key)
            record = await client.wait(handle.run_id, timeout=20)
            assert (record.error_dict() or {})["failed_seq"] == "4"
            await client.retry(handle.run_id)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.FAILED  # not parked: the history still fits
            assert calls[key] == 1  # the handled failure did not run again

    run(body)
