"""A final review's reproduction: a step that fails for good while the workflow's own
``asyncio.timeout`` fires during the FAILED entry's write must take the same branch live
and on replay (the live run took the timeout branch; the replay, the StepError one)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import legato
from legato import RunStatus
from legato.testing import VirtualClock
from tests.helpers import run, running_worker, status_is, wait_until

branches_taken: list[str] = []


@legato.step
async def final_review_fails() -> str:
    raise ValueError("boom")


@legato.step
async def final_review_mark(what: str) -> None:
    branches_taken.append(what)


@legato.workflow
async def final_review_timeout_around_failing_step() -> str:
    try:
        async with asyncio.timeout(10):
            await final_review_fails()
        branch = "unreachable"
    except TimeoutError:
        branch = "timed out"
    except legato.StepError:
        branch = "step failed"
    await final_review_mark(branch)
    await legato.wait_for_signal("next")  # leaves memory: the signal replays the run
    return branch


def test_a_timeout_during_a_failed_steps_write_replays_the_same_way(db_url: str) -> None:
    async def body() -> None:
        branches_taken.clear()
        clock = VirtualClock()
        writing, release = asyncio.Event(), asyncio.Event()
        holders: set[Any] = set()
        async with running_worker(db_url, clock=clock) as (worker, client):
            original = worker.store.record_soon

            def slow_failed_write(lease: Any, entries: Any) -> Any:
                write = original(lease, entries)  # committed whatever happens next
                failing = [
                    e
                    for e in entries
                    if e.name == final_review_fails.name and e.status.value == "failed"
                ]
                if not failing:
                    return write
                writing.set()
                held = asyncio.get_running_loop().create_future()

                async def hold() -> None:
                    await release.wait()
                    held.set_result(await write)

                holders.add(asyncio.ensure_future(hold()))
                return held

            worker.store.record_soon = slow_failed_write  # type: ignore[method-assign]
            run_id = "final-review"
            await client.start(final_review_timeout_around_failing_step, run_id=run_id)
            await wait_until(writing.is_set)
            clock.advance(20)  # the workflow's asyncio.timeout is due while the write waits
            # The run's loop needs its turns to fire the timeout before the write ends;
            # nothing observable marks that moment, so this pause is deliberate.
            await asyncio.sleep(0.3)
            release.set()
            await wait_until(status_is(client, run_id, RunStatus.WAITING))
            await client.signal(run_id, "next")
            record = await client.wait(run_id, timeout=30)
        assert record.status is RunStatus.COMPLETED
        # What the run returned on replay is the branch whose side effect really ran.
        assert [json.loads(record.output or "null")] == branches_taken

    run(body)


@legato.workflow
async def final_review_child_waits() -> str:
    await legato.wait_for_signal("never")
    return "done"


@legato.workflow
async def final_review_parent() -> str:
    return str(await legato.child(final_review_child_waits, run_id="final-review-child"))


def test_a_resident_child_learns_at_once_that_its_ended_parent_cancelled_it(
    db_url: str,
) -> None:
    """The child waits in the worker's memory; its parent is cancelled. The cancel of the
    child must reach it by the wake path, not at the next heartbeat (20 s here)."""

    async def body() -> None:
        async with running_worker(db_url, lease_seconds=60, evict_after=60) as (worker, client):
            parent = await client.start(final_review_parent)

            def child_resident_and_waiting() -> bool:
                execution = worker.executions.get("final-review-child")
                return execution is not None and bool(execution.ctx.waits)

            await wait_until(child_resident_and_waiting)
            await client.cancel(parent.run_id)
            record = await client.wait("final-review-child", timeout=10)
        assert record.status is RunStatus.CANCELLED

    run(body)
