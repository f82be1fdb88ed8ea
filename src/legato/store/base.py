"""The store interface: everything Legato keeps, behind one narrow protocol.

Every backend (SQLite now, PostgreSQL next) implements :class:`Store` and passes the same
contract tests. Methods that write on behalf of a worker take a :class:`Lease` and are
*fenced*: they change nothing and return ``False`` (or ``None``) when the run's lease epoch
or owner no longer matches, so a worker that lost its lease cannot write.

Times are seconds since the epoch (floats). ``now`` is the workflow clock (virtual in
tests); ``lease_now`` is always the real clock, because leases protect real processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..records import (
    BlueprintRecord,
    ClaimedRun,
    EventRecord,
    JournalEntry,
    NewRun,
    Pause,
    PauseScope,
    QueueLimits,
    RunControl,
    RunRecord,
    RunStatus,
    SignalRecord,
    Suspension,
    Wakeup,
    WorkerRecord,
)


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's claim on a run: writes carry it and are refused when it is stale."""

    run_id: str
    owner: str
    epoch: int


class Store(Protocol):
    """Persistence for runs, journals, signals, workers, blueprints and events."""

    url: str

    async def open(self) -> None:
        """Connect; fail with SchemaError if the schema is not current.

        SQLite upgrades its schema here; PostgreSQL needs :meth:`upgrade` first.
        """

    async def upgrade(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied."""

    async def close(self) -> None:
        """Flush pending writes and close connections."""

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) after this process commits new runnable work."""

    def add_run_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(run_id)`` (from any thread) when a signal, a cancel request or a
        child's end is committed for that run, by this process or (PostgreSQL) any other."""

    async def resident_wakeups(
        self,
        run_ids: Sequence[str],
        signal_runs: Sequence[str],
        child_waits: Sequence[tuple[str, str]],
    ) -> list[Wakeup]:
        """What arrived for runs held in memory: cancel requests (of ``run_ids``), buffered
        signals (of ``signal_runs``) and ended children at ``(run_id, seq)``. A read."""

    # -- runs, for clients -------------------------------------------------------------
    async def create_run(self, new: NewRun, now: float) -> tuple[RunRecord, bool]:
        """Create a pending run, or return the existing one with that id (``created=False``)."""

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""

    async def list_runs(
        self,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        queue: str | None = None,
    ) -> list[RunRecord]:
        """Newest first."""

    async def get_journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal, in the order entries were first written."""

    async def send_signal(self, run_id: str, name: str, payload: str | None, now: float) -> None:
        """Buffer a signal and wake the run if it waits for it (RunNotFound if no run)."""

    async def request_cancel(self, run_id: str, now: float) -> RunRecord:
        """Ask a run to cancel; wakes it if it waits. Returns the run as it now stands."""

    async def set_paused(self, scope: PauseScope, name: str, paused: bool, now: float) -> None:
        """Pause or resume one run, every run of a workflow, or a queue.

        Paused runs are never claimed; a worker holding one lets its in-flight step finish
        and releases it (it learns at its next heartbeat). RunNotFound for an unknown run.
        """

    async def list_pauses(self) -> list[Pause]:
        """Paused workflows and queues (paused single runs show on the run)."""

    async def redrive_run(
        self, run_id: str, status: RunStatus, drop_seqs: Sequence[str], now: float
    ) -> RunRecord:
        """Run an ended (or parked) run again from its journal, minus ``drop_seqs``.

        Atomic: only if the run is still in ``status`` (StoreError otherwise). Signals that
        dropped entries consumed are buffered again; the run becomes pending and its
        ``redrives`` count grows. Kept entries are replayed, dropped ones run again.
        """

    # -- worker side ---------------------------------------------------------------------
    async def claim_runs(
        self,
        owner: str,
        limit: int,
        now: float,
        lease_now: float,
        lease_seconds: float,
        workflows: Sequence[str],
        queues: Sequence[str] = ("default",),
    ) -> list[ClaimedRun]:
        """Take up to ``limit`` runnable runs (pending, due, or with an expired lease) of
        the named workflows in the served queues, within the queues' limits (see
        :class:`QueueLimits`): a worker only takes runs whose code it has."""

    async def set_queue(self, limits: QueueLimits) -> None:
        """Create or replace a queue's limits (they apply to every worker at once)."""

    async def list_queues(self) -> list[QueueLimits]:
        """Queues that have limits set."""

    async def record(self, lease: Lease, entries: Sequence[JournalEntry]) -> bool:
        """Insert or update journal entries (fenced). Durable when the call returns."""

    def record_soon(self, lease: Lease, entries: Sequence[JournalEntry]) -> asyncio.Future[bool]:
        """Like :meth:`record`, as a future of the caller's loop (no task to create)."""

    def record_nowait(
        self,
        lease: Lease,
        entries: Sequence[JournalEntry],
        on_failure: Callable[[BaseException | None], None],
    ) -> None:
        """Queue journal entries for the next grouped commit without waiting for it.

        ``on_failure(None)`` is called if the write was fenced, ``on_failure(exc)`` if it
        failed; nothing is called on success.
        """

    async def take_signal(
        self,
        lease: Lease,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> tuple[bool, SignalRecord | None]:
        """Consume the oldest buffered signal named in ``names``, or record ``waiting``.

        With a signal: ``on_signal(signal)`` is written and the signal is marked consumed,
        atomically. Without: ``waiting`` is written. Returns (lease still held, signal).
        """

    def consume_signal_nowait(
        self,
        lease: Lease,
        signal: SignalRecord,
        entry: JournalEntry,
        on_failure: Callable[[BaseException | None], None],
    ) -> None:
        """Queue: mark ``signal`` consumed by ``entry`` and write ``entry`` (fenced).

        For a signal the worker already knows is buffered for a run it owns; see
        :meth:`record_nowait` for ``on_failure``.
        """

    async def start_child(
        self, lease: Lease, entry: JournalEntry, child: NewRun, now: float
    ) -> JournalEntry | None:
        """Create the child run and the parent's journal entry for it, atomically.

        Returns the entry as stored (already completed if the child had finished; failed if
        the child id belongs to another run's child or to a top-level run), or None when
        fenced.
        """

    async def suspend_run(self, lease: Lease, suspension: Suspension, now: float) -> bool:
        """Evict a run until its wake condition; pending at once if it is already met."""

    async def finish_run(
        self,
        lease: Lease,
        status: RunStatus,
        output: str | None,
        error: str | None,
        now: float,
    ) -> bool:
        """End a run (completed, failed, cancelled or parked) and resolve its parent's wait."""

    async def cancel_children(self, run_id: str, now: float) -> int:
        """Ask the attached children of an ending run that still run to cancel; how many.

        Its own transaction (children first, never with the parent's row locked), so a
        child finishing at the same moment cannot deadlock with it.
        """

    async def release_run(self, lease: Lease, now: float) -> bool:
        """Give a run back (graceful shutdown): pending again, for any worker."""

    async def heartbeat(
        self, worker: WorkerRecord, lease_until: float, run_ids: Sequence[str]
    ) -> dict[str, RunControl]:
        """Renew the leases of ``run_ids`` (the runs in the worker's memory, no others).

        Returns what the worker holds, by run id: lease epoch, cancel request, pause.
        """

    async def deregister_worker(self, worker_id: str) -> None:
        """Remove a worker that stopped cleanly."""

    async def list_workers(self) -> list[WorkerRecord]:
        """Known workers, newest heartbeat first."""

    async def expire_leases_of(self, worker_ids: Sequence[str]) -> int:
        """Make the runs of dead workers claimable now; returns how many runs."""

    async def next_wake_at(self) -> tuple[float | None, float | None]:
        """(earliest timer, earliest lease expiry): when an idle worker must look again."""

    async def data_changed(self) -> bool:
        """True if another process committed since the last call (cheap; for idle workers)."""

    # -- blueprints ----------------------------------------------------------------------
    async def publish_blueprint(
        self, namespace: str, name: str, version: str, digest: str, source: str, now: float
    ) -> BlueprintRecord:
        """Publish one version of a blueprint; versions are immutable once published.

        Publishing the same content again (same ``digest``) returns the stored record, so
        a deploy script can publish on every run. Other content under a version already
        taken raises ConfigurationError: runs pinned to that version must keep meaning
        what they meant.
        """

    async def get_blueprint(
        self, namespace: str, name: str, version: str | None
    ) -> BlueprintRecord | None:
        """That version, or the highest by semantic version when ``version`` is None."""

    async def list_blueprints(self, namespace: str | None = None) -> list[BlueprintRecord]:
        """Every published version, by namespace, name and semantic version."""

    # -- events --------------------------------------------------------------------------
    async def append_event(self, envelope: str, type: str, source: str, now: float) -> int:
        """Store an event (``envelope`` is its JSON) and return its id.

        Ids increase in commit order, so a reader that remembers the last id it handled
        misses nothing by asking for the events after it.
        """

    async def read_events(self, after_id: int, since: float, limit: int = 100) -> list[EventRecord]:
        """Events with id above ``after_id`` published at or after ``since``, by id."""

    async def set_listening(self, run_id: str, listening: bool, now: float) -> None:
        """Mark a run as waiting for events (from ``now``), or no longer waiting.

        Marking a run that already listens keeps its first time, so no event published in
        between is lost.
        """

    async def listening_runs(self) -> list[str]:
        """Ids of the runs that wait for events, longest waiting first."""
