"""Waits that end while the run is in memory, racing steps in flight; asyncio constructs
around durable waits; cancellation reaching steps; and a worker that lost its lease
executing nothing more (on both backends).

No test here measures time: a race is shown by its order (the wait ends while the step
it races is held in flight by the test), and `make bench` (W8) measures the latency.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

import legato
from legato.blueprint import load_blueprint
from legato.store import open_store
from legato.worker.services import current_store
from tests.helpers import run, running_worker, status_is, wait_until


@pytest.fixture(autouse=True)
def fresh_events() -> None:
    events.clear()


# -- steps the tests hold in flight --------------------------------------------------------
gates: dict[str, asyncio.Event] = {}
events: list[tuple[str, str]] = []  # (which store ran it, what)


def gate(name: str) -> asyncio.Event:
    gates[name] = asyncio.Event()
    return gates[name]


@legato.step
async def held(name: str) -> str:
    """Runs until the test opens the gate ``name``."""
    events.append(("step", f"{name}:started"))
    await gates[name].wait()
    return name


@legato.workflow
async def race_signal_against_step(key: str) -> dict[str, Any]:
    won, finished = await asyncio.gather(
        legato.wait_any(legato.signal("go"), legato.timer(3600)), held(key)
    )
    return {"index": won.index, "name": won.name, "step": finished}


@legato.workflow
async def signal_beside_step(key: str) -> Any:
    got, _ = await asyncio.gather(legato.wait_for_signal("data"), held(key))
    return got


@legato.workflow
async def task_group_of_two_signals() -> list[Any]:
    async with asyncio.TaskGroup() as group:
        a = group.create_task(legato.wait_for_signal("a"))
        b = group.create_task(legato.wait_for_signal("b"))
    return [a.result(), b.result()]


@legato.workflow
async def wait_for_around_a_signal() -> Any:
    return await asyncio.wait_for(legato.wait_for_signal("a"), 3600)


@legato.workflow
async def asyncio_wait_around_signals() -> list[Any]:
    first = asyncio.ensure_future(legato.wait_for_signal("a"))
    second = asyncio.ensure_future(legato.wait_for_signal("b"))
    _done, pending = await asyncio.wait([first, second])
    assert not pending
    return [first.result(), second.result()]


@legato.workflow
async def timeout_around_a_signal() -> Any:
    async with asyncio.timeout(3600):
        return await legato.wait_for_signal("a")


@legato.workflow
async def short_timeout_then_durable_sleep() -> str:
    try:
        async with asyncio.timeout(0.2):
            await legato.wait_for_signal("never")
    except TimeoutError:
        pass
    await legato.sleep(0.3)  # the run leaves memory and is replayed past the timeout
    return "timed out, then slept"


@legato.workflow
async def same_name_timer_and_signal() -> str:
    won = await legato.wait_any(legato.timer(3600, name="approved"), legato.signal("approved"))
    return f"{won.index}:{won.name}"


@legato.workflow
async def waits_on_a_plain_event() -> None:
    await asyncio.Event().wait()  # nothing will ever set it


@legato.step
async def long_async_step() -> str:
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        events.append(("step", "async:cancelled"))
        raise
    return "slept"


@legato.workflow
async def one_long_async_step() -> str:
    return await long_async_step()


@legato.step
def long_sync_step() -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            legato.heartbeat()
        except legato.StepCancelled:
            events.append(("step", f"sync:told:{legato.step_info().cancel_requested}"))
            raise
        time.sleep(0.02)
    return "finished"


@legato.workflow
async def one_long_sync_step() -> str:
    return await long_sync_step()


# -- races ---------------------------------------------------------------------------------
def test_a_signal_ends_a_wait_racing_a_step_in_flight(db_url: str) -> None:
    async def body() -> None:
        release = gate("race")
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start(race_signal_against_step, "race", run_id="race")
            await wait_until(lambda: ("step", "race:started") in events)
            await client.signal("race", "go", {"ok": True})

            async def wait_ended() -> bool:
                journal = await client.journal("race")
                return any(
                    e.kind is legato.EntryKind.WAIT_ANY and e.status is legato.EntryStatus.COMPLETED
                    for e in journal
                )

            await wait_until(wait_ended)  # while the step is still held in flight
            step_done = [
                e
                for e in await client.journal("race")
                if e.name == held.name and e.status is legato.EntryStatus.COMPLETED
            ]
            release.set()
            assert step_done == []  # the wait ended while the step was still in flight
            record = await client.wait(handle.run_id, timeout=30)
            assert json.loads(record.output or "null") == {
                "index": 0,
                "name": "go",
                "step": "race",
            }

    run(body)


def test_a_signal_to_a_resident_run_is_consumed_beside_a_running_step(db_url: str) -> None:
    async def body() -> None:
        release = gate("beside")
        async with running_worker(db_url) as (_worker, _client):
            # The client on a store of its own, as another process would be.
            other = open_store(db_url)
            await other.open()
            try:
                client = legato.AsyncClient(other)
                await client.start(signal_beside_step, "beside", run_id="beside")
                await wait_until(lambda: ("step", "beside:started") in events)
                await client.signal("beside", "data", [1, 2])

                async def taken() -> bool:
                    journal = await client.journal("beside")
                    return any(
                        e.kind is legato.EntryKind.SIGNAL
                        and e.status is legato.EntryStatus.COMPLETED
                        for e in journal
                    )

                await wait_until(taken)
                assert not release.is_set()  # consumed while the step was in flight
                release.set()
                record = await client.wait("beside", timeout=30)
                assert json.loads(record.output or "null") == [1, 2]
            finally:
                await other.close()

    run(body)


def test_a_timer_and_a_signal_of_one_name_return_the_signal(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            await client.start(same_name_timer_and_signal, run_id="same-name")
            await client.signal("same-name", "approved")
            assert await client.result("same-name", timeout=30) == "1:approved"

    run(body)


def test_fork_compete_picks_the_wait_over_a_slower_function(db_url: str) -> None:
    doc = load_blueprint(
        """
document: {dsl: '1.0.3', namespace: tests, name: compete-wait, version: '1.0.0'}
do:
  - race:
      fork:
        compete: true
        branches:
          - waited:
              do:
                - pause: {wait: {seconds: 1}}
                - mark: {set: {winner: wait}}
          - slow:
              do:
                - work: {call: tests.held-until-opened}
                - mark: {set: {winner: function}}
""",
        "compete-wait.yaml",
    )

    async def body() -> None:
        gate("compete")
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(doc, None)
            record = await client.wait(handle.run_id, timeout=60)
            assert record.status is legato.RunStatus.COMPLETED, record.error
            assert json.loads(record.output or "null") == {"winner": "wait"}
            journal = await client.journal(handle.run_id)
            decision = next(e for e in journal if e.kind is legato.EntryKind.DECISION)
            assert (decision.name, decision.output) == ("/do/0/race/fork", "0")
        gates["compete"].set()

    run(body)


@legato.blueprint.function("tests.held-until-opened")
async def held_until_opened() -> dict[str, Any]:
    await gates["compete"].wait()
    return {}


# -- asyncio constructs around durable waits -------------------------------------------------
def signals_then_result(db_url: str, wf: Any, names: list[str], run_id: str) -> Any:
    async def body() -> Any:
        async with running_worker(db_url) as (_worker, client):
            await client.start(wf, run_id=run_id)
            for name in names:
                await client.signal(run_id, name, name.upper())
            return await client.result(run_id, timeout=30)

    return run(body)


def test_a_task_group_of_two_signal_waits_completes(db_url: str) -> None:
    assert signals_then_result(db_url, task_group_of_two_signals, ["a", "b"], "tg") == ["A", "B"]


def test_wait_for_around_a_signal_wait_completes(db_url: str) -> None:
    assert signals_then_result(db_url, wait_for_around_a_signal, ["a"], "wf") == "A"


def test_asyncio_wait_around_signal_waits_completes(db_url: str) -> None:
    assert signals_then_result(db_url, asyncio_wait_around_signals, ["a", "b"], "aw") == [
        "A",
        "B",
    ]


def test_asyncio_timeout_around_a_signal_wait_completes(db_url: str) -> None:
    assert signals_then_result(db_url, timeout_around_a_signal, ["a"], "to") == "A"


def test_an_expired_asyncio_timeout_replays_the_same_way(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            await client.start(short_timeout_then_durable_sleep, run_id="expired")
            # A signal that arrives after the timeout gave up on the wait must not be
            # taken by the replay after the durable sleep.
            await wait_until(status_is(client, "expired", legato.RunStatus.WAITING))
            await client.signal("expired", "never", "late")
            assert await client.result("expired", timeout=30) == "timed out, then slept"

    run(body)


def test_a_run_waiting_on_something_legato_cannot_end_is_parked_with_where(
    db_url: str,
) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            await client.start(waits_on_a_plain_event, run_id="stuck")
            await wait_until(status_is(client, "stuck", legato.RunStatus.PARKED))
            error = json.loads((await client.get("stuck")).error or "{}")
            assert error["type"] == "WorkflowStuck"
            assert "Event.wait" in error["message"], error["message"]
            assert "legato.wait_for_signal" in error["message"]

    run(body)


# -- cancellation reaches steps in flight ----------------------------------------------------
@pytest.mark.parametrize("sender", ["same store", "other store"])
def test_cancel_stops_an_async_step_in_flight(db_url: str, sender: str) -> None:
    async def body() -> None:
        # Heartbeats every 20 s: a cancel seen within 10 s came by the wake path.
        async with running_worker(db_url, lease_seconds=60) as (_worker, client):
            if sender == "other store":  # as from another process: no in-process notice
                other = open_store(db_url)
                await other.open()
                client = legato.AsyncClient(other)
            await client.start(one_long_async_step, run_id="cancel-async")

            async def running() -> bool:
                journal = await client.journal("cancel-async")
                return any(e.status is legato.EntryStatus.RUNNING for e in journal)

            await wait_until(running)
            await client.cancel("cancel-async")
            # Well before the step's 30 s: the cancel reached the step itself.
            await wait_until(
                status_is(client, "cancel-async", legato.RunStatus.CANCELLED), timeout=10
            )
            assert ("step", "async:cancelled") in events
            (entry,) = await client.journal("cancel-async")
            assert entry.status is legato.EntryStatus.CANCELLED
            if sender == "other store":
                await other.close()

    run(body)


def test_cancel_reaches_a_sync_step_at_its_heartbeat(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            await client.start(one_long_sync_step, run_id="cancel-sync")

            async def running() -> bool:
                journal = await client.journal("cancel-sync")
                return any(e.status is legato.EntryStatus.RUNNING for e in journal)

            await wait_until(running)
            await client.cancel("cancel-sync")
            await wait_until(
                status_is(client, "cancel-sync", legato.RunStatus.CANCELLED), timeout=10
            )
            await wait_until(lambda: ("step", "sync:told:True") in events, timeout=10)

    run(body)


# -- a worker that lost its lease executes nothing more ---------------------------------------
@legato.step
async def work(tag: str) -> str:
    events.append((store_tag(), "work"))
    if store_tag() == "A":
        await gates["zombie"].wait()
    return tag


@legato.step
def cleanup_step() -> None:
    events.append((store_tag(), "cleanup"))


@legato.step
def undo_work(tag: str) -> None:
    events.append((store_tag(), "compensate"))


@legato.step(compensate=undo_work)
async def first_work(tag: str) -> str:
    events.append((store_tag(), "work"))
    if store_tag() == "A":
        await gates["zombie"].wait()
    return tag


@legato.workflow
async def work_with_cleanup(tag: str) -> str:
    try:
        await first_work(tag)
        return await work(tag)
    finally:
        await cleanup_step()


store_names: dict[int, str] = {}


def store_tag() -> str:
    return store_names.get(id(current_store.get()), "?")


def test_a_live_worker_that_lost_its_lease_runs_no_cleanup_or_compensation(
    db_url: str,
) -> None:
    async def body() -> None:
        gate("zombie")
        store_a, store_b = open_store(db_url), open_store(db_url)
        await store_a.open()
        await store_b.open()
        store_names.update({id(store_a): "A", id(store_b): "B"})
        try:
            # concurrency=1: A has no free slot, so B (not A itself) takes the run over.
            async with running_worker(store_a, lease_seconds=60, concurrency=1) as (
                worker_a,
                client,
            ):
                await client.start(work_with_cleanup, "t", run_id="zombie")
                await wait_until(lambda: ("A", "work") in events)
                # A's lease is taken while its step is in flight; A itself stays alive.
                await store_a.expire_leases_of([worker_a.worker_id])
                async with running_worker(store_b):
                    await wait_until(
                        status_is(client, "zombie", legato.RunStatus.COMPLETED), timeout=30
                    )
                    gates["zombie"].set()  # A's step now finishes; its write is refused
                    await wait_until(lambda: "zombie" not in worker_a.executions)
        finally:
            await store_a.close()
            await store_b.close()
        from_a = [what for who, what in events if who == "A"]
        assert from_a == ["work"]  # no second step, no cleanup, no compensation on A
        assert [what for who, what in events if who == "B"] == ["work", "work", "cleanup"]

    run(body)


# -- a child's end reaches its parent in memory -------------------------------------------
@legato.workflow
async def quick_child(x: int) -> int:
    return x * 2


@legato.step
def after_child(value: int) -> int:
    events.append(("step", f"after-child:{value}"))
    return value


@legato.workflow
async def child_beside_step(key: str) -> int:
    async def via_child() -> int:
        return await after_child(await legato.child(quick_child, 21))

    got, _ = await asyncio.gather(via_child(), held(key))
    return got


def test_a_child_ending_reaches_its_parent_while_a_step_is_in_flight(db_url: str) -> None:
    async def body() -> None:
        release = gate("child")
        async with running_worker(db_url) as (_worker, client):
            await client.start(child_beside_step, "child", run_id="parent")
            # The parent acts on the child's result while its other step is held.
            await wait_until(lambda: ("step", "after-child:42") in events)
            assert not release.is_set()
            release.set()
            assert await client.result("parent", timeout=30) == 42

    run(body)


@legato.workflow
async def short_sleep_then_step() -> str:
    await legato.sleep(0.2)
    return await after_child(7) and "slept in memory"


def test_evict_after_keeps_an_idle_run_in_memory_through_a_short_sleep(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, evict_after=30) as (_worker, client):
            await client.start(short_sleep_then_step, run_id="kept")
            assert await client.result("kept", timeout=30) == "slept in memory"
            record = await client.get("kept")
            assert record.lease_epoch == 1  # claimed once: it never left memory
        async with running_worker(db_url) as (_worker, client):  # evict at once (default)
            await client.start(short_sleep_then_step, run_id="evicted")
            assert await client.result("evicted", timeout=30) == "slept in memory"
            assert (await client.get("evicted")).lease_epoch == 2  # left, claimed again

    run(body)


# -- writes reach the store in the order the workflow made them --------------------------------
@legato.step
def one_turn(i: int) -> int:  # sync: its end arrives from the thread pool, racing the mark
    return i


@legato.workflow
async def three_quick_steps() -> int:
    return await one_turn(1) + await one_turn(2) + await one_turn(3)


def test_a_running_mark_never_lands_after_the_steps_result(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import legato.runtime.steps

    # Every attempt's "running" mark fires at once, racing the step's result write.
    monkeypatch.setattr(legato.runtime.steps, "RUNNING_MARK_DELAY", 0.0)

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handles = [await client.start(three_quick_steps) for _ in range(100)]
            for h in handles:
                assert await client.result(h.run_id, timeout=30) == 6
            for h in handles:
                statuses = {e.status for e in await client.journal(h.run_id)}
                assert statuses == {legato.EntryStatus.COMPLETED}, (h.run_id, statuses)

    run(body)
