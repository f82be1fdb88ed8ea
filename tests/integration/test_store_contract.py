"""The store contract: what every backend must do, tested on each of them."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from dataclasses import replace

import pytest

import legato
from legato.records import (
    EntryKind,
    EntryStatus,
    JournalEntry,
    NewRun,
    PauseScope,
    RunControl,
    RunStatus,
    Suspension,
    WorkerRecord,
)
from legato.store import Lease, Store, open_store
from tests.helpers import run

NOW = 1_800_000_000.0
NAMES = ["wf", "parent", "child"]


async def opened(url: str) -> Store:
    store = open_store(url)
    await store.open()
    return store


def entry(run_id: str, seq: str, status: EntryStatus = EntryStatus.COMPLETED) -> JournalEntry:
    return JournalEntry(run_id, seq, EntryKind.STEP, "s", status, attempts=1, output="1")


async def claim_one(store: Store, owner: str, lease_now: float = NOW) -> Lease:
    (claimed,) = await store.claim_runs(owner, 10, NOW, lease_now, 15, NAMES)
    return Lease(claimed.run.run_id, owner, claimed.run.lease_epoch)


def test_create_is_idempotent_and_claim_takes_each_run_once(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            record, created = await store.create_run(NewRun("r1", "wf", "[[], {}]"), NOW)
            assert created and record.status is RunStatus.PENDING
            again, created = await store.create_run(NewRun("r1", "other", None), NOW)
            assert not created and again.workflow == "wf"
            first = await store.claim_runs("w1", 10, NOW, NOW, 15, NAMES)
            assert [c.run.run_id for c in first] == ["r1"]
            assert first[0].run.lease_epoch == 1 and first[0].run.owner == "w1"
            assert await store.claim_runs("w2", 10, NOW, NOW, 15, NAMES) == []
        finally:
            await store.close()

    run(body)


def test_a_claim_says_whether_it_took_the_run_over_and_from_whom(store_url: str) -> None:
    """The worker logs a take-over (naming the worker that died) only for a claim of a
    run still running under an expired lease; a new or released run is simply started."""

    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", "[[], {}]"), NOW)
            (fresh,) = await store.claim_runs("w1", 10, NOW, NOW, 15, NAMES)
            assert not fresh.taken_over and fresh.previous_owner is None
            # w1's lease runs out with the run still running: w2 takes it over.
            (taken,) = await store.claim_runs("w2", 10, NOW, NOW + 60, 15, NAMES)
            assert taken.taken_over and taken.previous_owner == "w1"
            assert taken.run.recoveries == 1
            # w2 dies on this host: its lease is expired at once, and w3 takes it over.
            await store.expire_leases_of(["w2"])
            (again,) = await store.claim_runs("w3", 10, NOW, NOW + 60, 15, NAMES)
            assert again.taken_over and again.previous_owner == "w2"
            # Released (a graceful stop): the next claim is not a take-over.
            lease = Lease("r1", "w3", again.run.lease_epoch)
            assert await store.release_run(lease, NOW)
            (released,) = await store.claim_runs("w4", 10, NOW, NOW + 60, 15, NAMES)
            assert not released.taken_over and released.previous_owner is None
        finally:
            await store.close()

    run(body)


def test_a_worker_claims_only_runs_of_workflows_it_knows(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("mine", "wf", None), NOW)
            await store.create_run(NewRun("theirs", "billing.invoice", None), NOW)
            claimed = await store.claim_runs("w1", 10, NOW, NOW, 15, ["wf"])
            assert [c.run.run_id for c in claimed] == ["mine"]
            other = await store.claim_runs("w2", 10, NOW, NOW, 15, ["billing.invoice"])
            assert [c.run.run_id for c in other] == ["theirs"]
        finally:
            await store.close()

    run(body)


def test_a_worker_claims_only_runs_whose_requirements_its_capabilities_hold(
    store_url: str,
) -> None:
    """Each candidate statement (pending, due timer, expired lease) filters by capability:
    a run requiring names a worker lacks is neither claimed nor reported runnable."""

    async def body() -> None:
        store = await opened(store_url)

        async def claim(owner: str, caps: list[str], lease_now: float = NOW) -> list[str]:
            got = await store.claim_runs(owner, 10, NOW, lease_now, 15, ["wf"], capabilities=caps)
            return sorted(c.run.run_id for c in got)

        async def runnable(caps: list[str], lease_now: float = NOW) -> bool:
            return await store.any_runnable(NOW, lease_now, ["wf"], capabilities=caps)

        try:
            needs = ("billing.charge", "acme:approve")
            await store.create_run(NewRun("plain", "wf", None), NOW)
            await store.create_run(NewRun("needy", "wf", None, requires=needs), NOW)
            record = await store.get_run("needy")
            assert record is not None and record.requires == needs
            plain = await store.get_run("plain")
            assert plain is not None and plain.requires == ()

            # Pending: a worker lacking one of the two names takes only the plain run.
            assert await claim("a", ["billing.charge"]) == ["plain"]
            assert not await runnable(["billing.charge"])
            assert await runnable([*needs, "other"])
            untouched = await store.get_run("needy")
            assert untouched is not None and untouched.owner is None
            assert untouched.lease_epoch == 0 and untouched.status is RunStatus.PENDING

            # Due timer: the run waits on a timer that is due; still only for a capable one.
            (held,) = await store.claim_runs("b", 10, NOW, NOW, 15, ["wf"], capabilities=needs)
            lease = Lease("needy", "b", held.run.lease_epoch)
            assert await store.suspend_run(lease, Suspension(NOW - 1), NOW)
            assert await claim("a", ["billing.charge"]) == []
            assert not await runnable(["billing.charge"])
            assert await claim("b", [*needs]) == ["needy"]

            # Expired lease: b stops renewing; a cannot take it over, c (capable) can.
            later = NOW + 60
            assert await claim("a", ["billing.charge"], lease_now=later) == ["plain"]
            assert not await runnable(["billing.charge"], lease_now=later)
            assert await claim("c", [*needs], lease_now=later) == ["needy"]
            taken = await store.get_run("needy")
            assert taken is not None and taken.owner == "c" and taken.recoveries == 1
        finally:
            await store.close()

    run(body)


def test_heartbeats_publish_what_a_worker_can_run(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            first = WorkerRecord(
                "w1",
                "host",
                123,
                NOW,
                NOW,
                app="billing",
                queues=("default", "gpu"),
                workflows=("billing.invoice", "blueprint:*"),
                capabilities=("billing.charge",),
            )
            await store.heartbeat(first, NOW + 15, [])
            (listed,) = await store.list_workers()
            assert listed == first
            # A later beat replaces what the worker published, not only its time.
            second = replace(first, heartbeat_at=NOW + 30, capabilities=(), queues=("gpu",))
            await store.heartbeat(second, NOW + 45, [])
            assert await store.list_workers() == [second]
        finally:
            await store.close()

    run(body)


def test_writes_are_fenced_by_the_lease_epoch(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            old = await claim_one(store, "w1")
            assert await store.record(old, [entry("r1", "1")])
            # w1's lease expires; w2 takes the run over with a new epoch.
            new = await claim_one(store, "w2", lease_now=NOW + 60)
            assert new.epoch == old.epoch + 1
            assert not await store.record(old, [entry("r1", "2")])
            assert not await store.finish_run(old, RunStatus.COMPLETED, "1", None, NOW)
            assert not await store.suspend_run(old, Suspension(None), NOW)
            assert (
                await store.take_signal(old, entry("r1", "3"), ["x"], lambda s: entry("r1", "3"))
            )[0] is False
            assert [e.seq for e in await store.get_journal("r1")] == ["1"]
            assert await store.finish_run(new, RunStatus.COMPLETED, "1", None, NOW)
            record = await store.get_run("r1")
            assert record is not None and record.status is RunStatus.COMPLETED
        finally:
            await store.close()

    run(body)


def test_signals_are_buffered_consumed_once_and_wake_waiters(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            await store.send_signal("r1", "go", '"early"', NOW)
            lease = await claim_one(store, "w1")
            waiting = JournalEntry("r1", "1", EntryKind.SIGNAL, "go", EntryStatus.WAITING)

            def done(signal: object) -> JournalEntry:
                return replace(waiting, status=EntryStatus.COMPLETED, output='"early"')

            held, signal = await store.take_signal(lease, waiting, ["go"], done)
            assert held and signal is not None and signal.payload == '"early"'
            second = replace(waiting, seq="2")
            held, signal = await store.take_signal(lease, second, ["go"], done)
            assert held and signal is None  # consumed once; the wait is recorded instead
            assert await store.suspend_run(lease, Suspension(None, ("go",)), NOW)
            record = await store.get_run("r1")
            assert record is not None and record.status is RunStatus.WAITING
            assert record.wait_signals == ("go",)
            await store.send_signal("r1", "other", None, NOW)
            assert (await store.get_run("r1")).status is RunStatus.WAITING  # type: ignore[union-attr]
            await store.send_signal("r1", "go", '"late"', NOW)
            assert (await store.get_run("r1")).status is RunStatus.PENDING  # type: ignore[union-attr]
        finally:
            await store.close()

    run(body)


def test_suspending_with_a_condition_already_met_keeps_the_run_runnable(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            lease = await claim_one(store, "w1")
            await store.send_signal("r1", "go", None, NOW)  # arrives while the run is in memory
            assert await store.suspend_run(lease, Suspension(NOW + 3600, ("go",)), NOW)
            record = await store.get_run("r1")
            assert record is not None and record.status is RunStatus.PENDING
        finally:
            await store.close()

    run(body)


def test_due_timers_make_runs_claimable(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            lease = await claim_one(store, "w1")
            await store.suspend_run(lease, Suspension(NOW + 10), NOW)
            assert await store.next_wake_at(NAMES) == (NOW + 10, None)
            assert await store.claim_runs("w1", 10, NOW + 9, NOW, 15, NAMES) == []
            assert len(await store.claim_runs("w1", 10, NOW + 10, NOW, 15, NAMES)) == 1
        finally:
            await store.close()

    run(body)


def test_finishing_a_child_resolves_the_parent_entry_and_wakes_it(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("p", "parent", None), NOW)
            parent = await claim_one(store, "w1")
            waiting = JournalEntry(
                "p", "1", EntryKind.CHILD, "child", EntryStatus.WAITING, child_run_id="p:1"
            )
            stored = await store.start_child(
                parent,
                waiting,
                NewRun("p:1", "child", None, parent_run_id="p", parent_seq="1"),
                NOW,
            )
            assert stored is not None and stored.status is EntryStatus.WAITING
            assert await store.suspend_run(parent, Suspension(None, child_seqs=("1",)), NOW)
            child = await claim_one(store, "w1")
            assert child.run_id == "p:1"
            assert await store.finish_run(child, RunStatus.COMPLETED, '"ok"', None, NOW)
            (resolved,) = await store.get_journal("p")
            assert resolved.status is EntryStatus.COMPLETED and resolved.output == '"ok"'
            assert (await store.get_run("p")).status is RunStatus.PENDING  # type: ignore[union-attr]
        finally:
            await store.close()

    run(body)


def test_heartbeat_renews_leases_and_dead_workers_can_be_expired(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            lease = await claim_one(store, "w1")
            worker = WorkerRecord("w1", "host", 123, NOW, time.time())
            owned = await store.heartbeat(worker, NOW + 100, ["r1"])
            assert owned == {"r1": RunControl(lease.epoch, cancel_requested=False, paused=False)}
            assert [w.worker_id for w in await store.list_workers()] == ["w1"]
            assert await store.claim_runs("w2", 10, NOW, NOW + 50, 15, NAMES) == []  # renewed
            assert await store.expire_leases_of(["w1"]) == 1
            assert len(await store.claim_runs("w2", 10, NOW, NOW, 15, NAMES)) == 1
            assert await store.list_workers() == []
        finally:
            await store.close()

    run(body)


def test_claims_count_recoveries_from_dead_workers_and_a_redrive_resets_them(
    store_url: str,
) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            first = await claim_one(store, "w1")  # a new run: not a recovery
            assert (await store.get_run("r1")).recoveries == 0  # type: ignore[union-attr]
            # w1's lease expires (it died or stalled): w2 recovers the run.
            second = await claim_one(store, "w2", lease_now=NOW + 60)
            assert (await store.get_run("r1")).recoveries == 1  # type: ignore[union-attr]
            # A released run (graceful stop) is not a recovery; a run freed because its
            # worker's process is gone is.
            assert await store.release_run(second, NOW)
            third = await claim_one(store, "w3")
            assert await store.expire_leases_of(["w3"]) == 1
            (claimed,) = await store.claim_runs("w4", 10, NOW, NOW, 15, NAMES)
            assert claimed.run.recoveries == 2  # the claim itself returns the new count
            lease = Lease("r1", "w4", claimed.run.lease_epoch)
            assert first.epoch < third.epoch < lease.epoch
            assert await store.finish_run(lease, RunStatus.PARKED, None, '{"type": "E"}', NOW)
            again = await store.redrive_run("r1", RunStatus.PARKED, [], NOW)
            assert again.recoveries == 0 and again.status is RunStatus.PENDING
        finally:
            await store.close()

    run(body)


def test_release_and_cancel(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            lease = await claim_one(store, "w1")
            assert await store.release_run(lease, NOW)
            assert (await store.get_run("r1")).status is RunStatus.PENDING  # type: ignore[union-attr]
            lease = await claim_one(store, "w1")
            await store.suspend_run(lease, Suspension(None, ("go",)), NOW)
            record = await store.request_cancel("r1", NOW)
            assert record.cancel_requested and record.status is RunStatus.PENDING
            with pytest.raises(legato.RunNotFound):
                await store.request_cancel("nope", NOW)
        finally:
            await store.close()

    run(body)


def test_schema_is_versioned_and_a_newer_schema_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'v.db'}"

    async def reopen() -> None:
        store = await opened(url)
        await store.close()

    run(reopen)
    run(reopen)  # applying migrations twice is a no-op
    with sqlite3.connect(tmp_path / "v.db") as conn:
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert versions == [(1,), (2,), (3,), (4,), (5,), (6,), (7,)]
        conn.execute("INSERT INTO schema_migrations VALUES (99, 0)")
    with pytest.raises(legato.SchemaError, match="newer than this Legato"):
        run(reopen)


def test_a_known_buffered_signal_is_consumed_with_the_next_write(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r1", "wf", None), NOW)
            await store.send_signal("r1", "go", '"early"', NOW)
            (claimed,) = await store.claim_runs("w1", 10, NOW, NOW, 15, NAMES)
            lease = Lease("r1", "w1", claimed.run.lease_epoch)
            (signal,) = claimed.signals
            got = JournalEntry("r1", "1", EntryKind.SIGNAL, "go", EntryStatus.COMPLETED)
            failures: list[BaseException | None] = []
            store.consume_signal_nowait(lease, signal, got, failures.append)
            assert await store.record(lease, [entry("r1", "2")])  # flushes the queue in order
            waiting = JournalEntry("r1", "3", EntryKind.SIGNAL, "go", EntryStatus.WAITING)
            held, again = await store.take_signal(lease, waiting, ["go"], lambda s: waiting)
            assert held and again is None  # consumed exactly once
            assert [e.seq for e in await store.get_journal("r1")] == ["1", "2", "3"]
            stale = Lease("r1", "w1", lease.epoch - 1)
            store.consume_signal_nowait(stale, signal, got, failures.append)
            await store.record(lease, [entry("r1", "4")])
            await asyncio.sleep(0)
            assert failures == [None]  # the stale copy was fenced and told so
        finally:
            await store.close()

    run(body)


def test_higher_priority_starts_first_then_the_oldest(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            for i, priority in enumerate([0, 5, 0, 9, 5]):
                await store.create_run(NewRun(f"r{i}", "wf", None, priority=priority), NOW + i)
            order = []
            for _ in range(5):
                (claimed,) = await store.claim_runs("w1", 1, NOW + 10, NOW, 15, NAMES)
                order.append(claimed.run.run_id)
            assert order == ["r3", "r1", "r4", "r0", "r2"]
        finally:
            await store.close()

    run(body)


def test_queues_keep_their_runs_apart(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("gpu-1", "wf", None, queue="gpu"), NOW)
            await store.create_run(NewRun("plain-1", "wf", None), NOW)
            plain = await store.claim_runs("w1", 10, NOW, NOW, 15, NAMES)
            assert [c.run.run_id for c in plain] == ["plain-1"]
            gpu = await store.claim_runs("w2", 10, NOW, NOW, 15, NAMES, ["gpu"])
            assert [c.run.run_id for c in gpu] == ["gpu-1"]
        finally:
            await store.close()

    run(body)


def test_paused_runs_workflows_and_queues_are_not_claimed_until_resumed(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("one", "wf", None), NOW)
            await store.create_run(NewRun("q", "wf", None, queue="slow"), NOW)
            await store.create_run(NewRun("w", "parent", None), NOW)
            await store.set_paused(PauseScope.RUN, "one", True, NOW)
            await store.set_paused(PauseScope.QUEUE, "slow", True, NOW)
            await store.set_paused(PauseScope.WORKFLOW, "parent", True, NOW)
            queues = ["default", "slow"]
            assert await store.claim_runs("w1", 10, NOW, NOW, 15, NAMES, queues) == []
            assert await store.next_wake_at(NAMES) == (None, None)
            pauses = {(p.scope, p.name) for p in await store.list_pauses()}
            assert pauses == {(PauseScope.QUEUE, "slow"), (PauseScope.WORKFLOW, "parent")}
            await store.set_paused(PauseScope.QUEUE, "slow", False, NOW)
            claimed = await store.claim_runs("w1", 10, NOW, NOW, 15, NAMES, queues)
            assert [c.run.run_id for c in claimed] == ["q"]
            # a held run learns of a pause from the heartbeat
            await store.set_paused(PauseScope.WORKFLOW, "wf", True, NOW)
            worker = WorkerRecord("w1", "host", 123, NOW, time.time())
            owned = await store.heartbeat(worker, NOW + 100, ["q"])
            assert owned["q"].paused
            await store.set_paused(PauseScope.WORKFLOW, "wf", False, NOW)
            await store.set_paused(PauseScope.WORKFLOW, "parent", False, NOW)
            await store.set_paused(PauseScope.RUN, "one", False, NOW)
            claimed = await store.claim_runs("w2", 10, NOW, NOW, 15, NAMES, queues)
            assert sorted(c.run.run_id for c in claimed) == ["one", "w"]
            with pytest.raises(legato.RunNotFound):
                await store.set_paused(PauseScope.RUN, "nope", True, NOW)
        finally:
            await store.close()

    run(body)


def test_redrive_drops_entries_rebuffers_their_signals_and_counts(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("r", "wf", None), NOW)
            lease = await claim_one(store, "w1")
            await store.send_signal("r", "go", '"x"', NOW)
            waiting = JournalEntry("r", "2", EntryKind.SIGNAL, "go", EntryStatus.WAITING)

            def took(signal: legato.records.SignalRecord) -> JournalEntry:
                return replace(waiting, status=EntryStatus.COMPLETED, output=signal.payload)

            assert await store.record(lease, [entry("r", "1")])
            held, signal = await store.take_signal(lease, waiting, ["go"], took)
            assert held and signal is not None
            assert await store.record(lease, [entry("r", "3", EntryStatus.FAILED)])
            assert await store.finish_run(lease, RunStatus.FAILED, None, '{"type": "E"}', NOW)
            with pytest.raises(legato.RunChanged, match="no longer completed"):
                await store.redrive_run("r", RunStatus.COMPLETED, ["3"], NOW)
            again = await store.redrive_run("r", RunStatus.FAILED, ["2", "3"], NOW + 1)
            assert again.status is RunStatus.PENDING and again.redrives == 1
            assert again.error is None and again.ended_at is None
            assert [e.seq for e in await store.get_journal("r")] == ["1"]
            (claimed,) = await store.claim_runs("w1", 10, NOW, NOW, 15, NAMES)
            assert [s.name for s in claimed.signals] == ["go"]  # buffered again
            with pytest.raises(legato.RunNotFound):
                await store.redrive_run("nope", RunStatus.FAILED, [], NOW)
        finally:
            await store.close()

    run(body)


def test_cancel_children_spares_detached_and_ended_children(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.create_run(NewRun("p", "parent", None), NOW)
            for child_id, detached in (("p:1", False), ("p:2", True), ("p:3", False)):
                new = NewRun(child_id, "child", None, parent_run_id="p", detached=detached)
                await store.create_run(new, NOW)
            claimed = await store.claim_runs("w1", 10, NOW, NOW, 15, ["child"])
            done = next(c for c in claimed if c.run.run_id == "p:3")
            lease = Lease("p:3", "w1", done.run.lease_epoch)
            assert await store.finish_run(lease, RunStatus.COMPLETED, "1", None, NOW)
            assert await store.cancel_children("p", NOW) == 1
            cancelled = {
                r.run_id: r.cancel_requested for r in await store.list_runs(workflow="child")
            }
            assert cancelled == {"p:1": True, "p:2": False, "p:3": False}
        finally:
            await store.close()

    run(body)
