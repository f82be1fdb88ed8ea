"""Durable waits: sleeps, signals, wait_any, timeouts; waiting runs hold no memory."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

import legato
from legato import RunStatus
from legato.testing import VirtualClock
from tests.helpers import run, running_worker, status_is, wait_until


@legato.step
async def mark(label: str) -> str:
    return label


@legato.workflow
async def sleeps_an_hour() -> str:
    await mark("before")
    await legato.sleep(timedelta(hours=1))
    return await mark("after")


def test_a_run_sleeping_an_hour_leaves_memory_and_wakes_on_time(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        async with running_worker(db_url, clock=clock) as (worker, client):
            handle = await client.start(sleeps_an_hour)
            is_waiting = status_is(client, handle.run_id, RunStatus.WAITING)
            await wait_until(is_waiting)
            record = await client.get(handle.run_id)
            assert record.wake_at == pytest.approx(clock.now() + 3600, abs=1)
            assert record.owner is None
            assert worker.executions == {}  # nothing of the run is held in memory
            clock.advance(timedelta(minutes=59))
            # A window, not a pause to settle: a worker that woke the run a minute early
            # would have claimed it within it.
            await asyncio.sleep(0.3)
            assert (await client.get(handle.run_id)).status is RunStatus.WAITING
            clock.advance(timedelta(minutes=1))
            assert await client.result(handle.run_id, timeout=10) == "after"

    run(body)


@legato.workflow
async def waits_for_go() -> object:
    return await legato.wait_for_signal("go")


def test_a_signal_sent_before_the_wait_is_not_lost(db_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url) as client:
            handle = await client.start(waits_for_go)
            await client.signal(handle.run_id, "go", [1, 2, 3])  # no worker yet
        async with running_worker(db_url) as (_, client):
            assert await client.result(handle.run_id, timeout=10) == [1, 2, 3]

    run(body)


@pytest.mark.slow
def test_a_thousand_waiting_runs_all_complete_when_signalled(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, concurrency=200) as (worker, client):
            handles = await asyncio.gather(*(client.start(waits_for_go) for _ in range(1000)))

            async def all_waiting() -> bool:
                return len(await client.list(status="waiting", limit=2000)) == 1000

            await wait_until(all_waiting, timeout=60)
            assert worker.executions == {}
            await asyncio.gather(*(client.signal(h.run_id, "go", i) for i, h in enumerate(handles)))
            results = [await client.result(h.run_id, timeout=60) for h in handles]
            assert results == list(range(1000))

    run(body)


@legato.workflow
async def signal_with_timeout() -> str:
    try:
        await legato.wait_for_signal("never", timeout=timedelta(days=3))
    except legato.WaitTimeout:
        return "timed out"
    return "signalled"


def test_signal_wait_times_out(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        async with running_worker(db_url, clock=clock) as (_, client):
            handle = await client.start(signal_with_timeout)
            is_waiting = status_is(client, handle.run_id, RunStatus.WAITING)
            await wait_until(is_waiting)
            clock.advance(timedelta(days=3, seconds=1))
            assert await client.result(handle.run_id, timeout=10) == "timed out"

    run(body)


@legato.workflow
async def approve_or_expire() -> list[object]:
    first = await legato.wait_any(
        legato.signal("approve"), legato.signal("reject"), legato.timer(timedelta(hours=1))
    )
    second = await legato.wait_any(legato.signal("approve"), legato.timer(60, name="expire"))
    return [first.index, first.name, first.value, second.index, second.name]


def test_wait_any_returns_the_first_condition(db_url: str) -> None:
    async def body() -> None:
        clock = VirtualClock()
        async with running_worker(db_url, clock=clock) as (_, client):
            handle = await client.start(approve_or_expire)
            is_waiting = status_is(client, handle.run_id, RunStatus.WAITING)
            await wait_until(is_waiting)
            await client.signal(handle.run_id, "reject", {"by": "ann"})
            await wait_until(is_waiting)
            clock.advance(61)
            result = await client.result(handle.run_id, timeout=10)
            assert result == [1, "reject", {"by": "ann"}, 1, "expire"]

    run(body)


def test_signal_to_an_unknown_or_finished_run_is_an_error(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            with pytest.raises(legato.RunNotFound):
                await client.signal("no-such-run", "go")
            handle = await client.start(waits_for_go)
            await client.signal(handle.run_id, "go", 1)
            await client.result(handle.run_id, timeout=10)
            with pytest.raises(legato.RunEnded, match="has ended"):
                await client.signal(handle.run_id, "go", 2)

    run(body)
