"""Retries, step failures, non-determinism, patching, cancellation."""

from __future__ import annotations

import asyncio
import os

import pytest

import legato
from legato import EntryKind, EntryStatus, RunStatus
from legato.runtime.definitions import Workflow
from legato.store import open_store
from tests.helpers import run, running_worker, status_is, wait_until

attempts: dict[str, int] = {}


@legato.step(retry=legato.Retry(max_attempts=3, initial_interval=0.01, backoff=2, jitter=0))
def flaky(key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] < 3:
        raise ConnectionError(f"attempt {attempts[key]} failed")
    return f"ok after {attempts[key]}"


class Declined(Exception):
    pass


@legato.step(retry=legato.Retry(max_attempts=5, initial_interval=0.01, non_retryable=(Declined,)))
def declines(key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    raise Declined("card declined")


@legato.workflow
async def uses_flaky(key: str) -> str:
    return await flaky(key)


@legato.workflow
async def uses_declines(key: str) -> str:
    try:
        return await declines(key)
    except legato.StepError as exc:
        return f"caught {exc.error_type.rsplit('.', 1)[-1]} after {exc.attempts}"


def test_a_step_is_retried_and_its_attempts_are_recorded(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(uses_flaky, db_url)  # a key per backend
            assert await client.result(handle.run_id, timeout=20) == "ok after 3"
            (entry,) = await client.journal(handle.run_id)
            assert entry.attempts == 3 and entry.status is EntryStatus.COMPLETED

    run(body)


def test_a_non_retryable_error_fails_at_once(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(uses_declines, db_url)
            assert await client.result(handle.run_id, timeout=20) == "caught Declined after 1"
            assert attempts[db_url] == 1
            (entry,) = await client.journal(handle.run_id)
            assert entry.status is EntryStatus.FAILED
            error = entry.error_dict()
            assert error is not None and error["message"] == "card declined"

    run(body)


@legato.workflow
async def fails_unhandled() -> None:
    await declines("k3")


def test_an_unhandled_error_fails_the_run_with_type_message_and_traceback(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(fails_unhandled)
            with pytest.raises(legato.RunFailed, match="card declined") as caught:
                await client.result(handle.run_id, timeout=20)
            assert caught.value.status == "failed"
            error = (await client.get(handle.run_id)).error_dict()
            assert error is not None
            assert error["type"] == "legato.errors.StepError"
            assert "Traceback" in error["traceback"]

    run(body)


@legato.step
async def step_a() -> str:
    return "a"


@legato.step
async def step_b() -> str:
    return "b"


async def _version_one() -> str:
    first = await step_a()
    await legato.wait_for_signal("go")
    return first


async def _version_two() -> str:
    first = await step_b()  # the change: a different first step
    await legato.wait_for_signal("go")
    return first


async def _version_two_patched() -> str:
    if legato.patched("use-step-b"):
        first = await step_b()
    else:
        first = await step_a()
    await legato.wait_for_signal("go")
    return first


def test_non_determinism_parks_the_run_with_a_clear_message(db_url: str) -> None:
    v1 = Workflow(_version_one, name="changing")
    v2 = Workflow(_version_two, name="changing")

    async def body() -> None:
        async with running_worker(db_url, workflows=[v1]) as (_, client):
            handle = await client.start(v1)
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
        async with running_worker(db_url, workflows=[v2]) as (_, client):
            await client.signal(handle.run_id, "go")
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.PARKED
            error = record.error_dict()
            assert error is not None and error["type"] == "NonDeterminismError"
            message = error["message"]
            assert "step 'step_a'" in message and "step 'step_b'" in message
            assert f"{os.path.basename(__file__)}:" in message  # the code line
            assert "legato.patched" in message
            with pytest.raises(legato.RunFailed, match="parked"):
                await client.result(handle.run_id, timeout=1)

    run(body)


def test_patched_keeps_old_runs_on_the_old_path(db_url: str) -> None:
    v1 = Workflow(_version_one, name="patching")
    v2 = Workflow(_version_two_patched, name="patching")

    async def body() -> None:
        async with running_worker(db_url, workflows=[v1]) as (_, client):
            old = await client.start(v1)
            await wait_until(status_is(client, old.run_id, RunStatus.WAITING))
        async with running_worker(db_url, workflows=[v2]) as (_, client):
            new = await client.start(v2)
            await wait_until(status_is(client, new.run_id, RunStatus.WAITING))
            await client.signal(old.run_id, "go")
            await client.signal(new.run_id, "go")
            assert await client.result(old.run_id, timeout=20) == "a"
            assert await client.result(new.run_id, timeout=20) == "b"
            kinds = [e.kind for e in await client.journal(new.run_id)]
            assert kinds[0] is EntryKind.PATCH

    run(body)


cleanup_log: list[str] = []


@legato.step
async def cleanup(label: str) -> str:
    cleanup_log.append(label)
    return label


@legato.workflow
async def cancellable() -> str:
    try:
        await legato.wait_for_signal("never")
    finally:
        await cleanup("released")
    return "unreachable"


def test_cancel_raises_in_the_workflow_so_cleanup_runs(db_url: str) -> None:
    async def body() -> None:
        cleanup_log.clear()
        async with running_worker(db_url) as (_, client):
            handle = await client.start(cancellable)
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            await client.cancel(handle.run_id)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.CANCELLED
            assert cleanup_log == ["released"]
            journal = await client.journal(handle.run_id)
            assert [(e.kind, e.status) for e in journal] == [
                (EntryKind.SIGNAL, EntryStatus.CANCELLED),
                (EntryKind.STEP, EntryStatus.COMPLETED),
            ]

    run(body)


@legato.step
async def blocking_step(gate_file: str) -> str:
    while not os.path.exists(gate_file):
        await asyncio.sleep(0.01)
    return "done"


@legato.workflow
async def two_steps(gate_file: str) -> str:
    first = await blocking_step(gate_file)
    second = await step_a()
    return first + second


def test_graceful_stop_finishes_the_step_and_releases_the_run(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    gate = str(tmp_path / "gate")

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start(two_steps, gate)
            await wait_until(lambda: any(e.pending for e in worker.executions.values()))
            worker.stop()  # the step is in flight
            # A window, not a pause to settle: a worker that released the run at once
            # (before its step ended) would have done so within it.
            await asyncio.sleep(0.1)
            assert handle.run_id in worker.executions  # still held: its step is in flight
            open(gate, "w").close()
            await wait_until(lambda: not worker.executions)
            record = await client.get(handle.run_id)
            assert record.status is RunStatus.PENDING and record.owner is None
            (entry,) = await client.journal(handle.run_id)
            assert entry.status is EntryStatus.COMPLETED  # finished and recorded
        async with running_worker(db_url) as (_, client):
            assert await client.result(handle.run_id, timeout=20) == "donea"

    run(body)


@legato.workflow
async def guarded(gate_file: str) -> str:
    return await blocking_step(gate_file)


def test_another_worker_takes_over_once_the_lease_expires(db_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    gate = str(tmp_path / "gate")

    async def body() -> None:
        store = open_store(db_url)
        await store.open()
        try:
            first = legato.Worker(store, lease_seconds=1.0)
            serving = asyncio.create_task(first.run())
            client = legato.AsyncClient(store)
            handle = await client.start(guarded, gate)
            await wait_until(lambda: bool(first.executions))
            first.kill()  # dies silently: no release, no more heartbeats
            await serving
            claimed = (await client.get(handle.run_id)).lease_epoch
            open(gate, "w").close()
            async with running_worker(store) as (second, client):
                # No manual step: the second worker claims the run when the lease expires.
                assert await client.result(handle.run_id, timeout=10) == "done"
                record = await client.get(handle.run_id)
                assert record.lease_epoch == claimed + 1
                assert second.runs_claimed == 1
        finally:
            await store.close()

    run(body)
