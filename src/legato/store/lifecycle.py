"""A held run's life: start a child, suspend, finish, give back; an ending run's children."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

from ..records import JournalEntry, NewRun, RunStatus, Suspension
from .base import Lease
from .journal import holds, upsert
from .ops import WORK, Op, arrived, count, one, rows, status_changed
from .plumbing import Plumbing
from .rows import child_entry_status, child_id_taken, entry_from_row, new_run_params, run_from_row


def _lease(lease: Lease) -> dict[str, Any]:
    return {"run_id": lease.run_id, "owner": lease.owner, "epoch": lease.epoch}


def start_child(
    lease: Lease, entry: JournalEntry, child: NewRun, now: float
) -> Op[JournalEntry | None]:
    if not (yield from holds(lease)):
        return None
    if (yield count("insert_run", **new_run_params(child, now))):
        yield WORK
        yield status_changed(child.run_id, RunStatus.PENDING.value)
    existing = run_from_row((yield one("get_run", run_id=child.run_id)))
    if (existing.parent_run_id, existing.parent_seq) != (lease.run_id, entry.seq):
        taken = child_id_taken(entry, child.run_id, now)
        yield from upsert(lease, taken)
        return taken
    yield from upsert(lease, entry)
    if existing.status.is_terminal:  # finished before this parent wrote its entry
        yield count(
            "resolve_child_entry",
            status=child_entry_status(existing.status),
            output=existing.output,
            error=existing.error,
            now=now,
            parent_run_id=lease.run_id,
            parent_seq=entry.seq,
            child_run_id=child.run_id,
        )
    return entry_from_row((yield one("get_entry", run_id=lease.run_id, seq=entry.seq)))


def suspend_run(lease: Lease, suspension: Suspension, now: float) -> Op[bool]:
    # Lock the row first (PostgreSQL): a signal or a finishing child locks it too, so either
    # it commits before this check (and is seen) or after the suspension (and wakes it).
    own = yield one("lock_own_run", **_lease(lease))
    if own is None:
        return False
    met = bool(own["cancel_requested"]) and not suspension.cancel_delivered
    if not met and suspension.signals:
        names = list(suspension.signals)
        met = (yield one("signal_waiting", run_id=lease.run_id, names=names)) is not None
    if not met and suspension.child_seqs:
        seqs = list(suspension.child_seqs)
        met = (yield one("child_done", run_id=lease.run_id, seqs=seqs)) is not None
    status = RunStatus.PENDING if met else RunStatus.WAITING
    yield count(
        "suspend_run",
        status=status.value,
        wake_at=suspension.wake_at,
        wait_signals=json.dumps(list(suspension.signals)) if suspension.signals else None,
        now=now,
        **_lease(lease),
    )
    if met or suspension.wake_at is not None:
        yield WORK  # runnable now, or idle workers recompute their next timer
    yield status_changed(lease.run_id, status.value)
    return True


def finish_run(
    lease: Lease, status: RunStatus, output: str | None, error: str | None, now: float
) -> Op[bool]:
    row = yield one(
        "finish_run", status=status.value, output=output, error=error, now=now, **_lease(lease)
    )
    if row is None:
        return False
    yield WORK  # a queue slot is free: limited queues may move on
    yield status_changed(lease.run_id, status.value)
    parent = row["parent_run_id"]
    if parent and status.is_terminal:
        yield one("lock_run", run_id=parent)  # see suspend_run
        yield count(
            "resolve_child_entry",
            status=child_entry_status(status),
            output=output,
            error=error,
            now=now,
            parent_run_id=parent,
            parent_seq=row["parent_seq"],
            child_run_id=lease.run_id,
        )
        if (yield count("wake_run", run_id=parent, now=now)):
            yield status_changed(parent, RunStatus.PENDING.value)
        yield arrived(parent)  # the parent may be in a worker's memory, waiting
    return True


def cancel_children(run_id: str, now: float) -> Op[int]:
    cancelled = yield rows("cancel_children", run_id=run_id, now=now)
    if cancelled:
        yield WORK
    for child in cancelled:  # a child held in a worker's memory learns it at once
        yield arrived(child["run_id"])
    return len(cancelled)


def release_run(lease: Lease, now: float) -> Op[bool]:
    if (yield count("release_run", now=now, **_lease(lease))) == 0:
        return False
    yield WORK
    yield status_changed(lease.run_id, RunStatus.PENDING.value)
    return True


class Lifecycle(Plumbing):
    async def start_child(
        self, lease: Lease, entry: JournalEntry, child: NewRun, now: float
    ) -> JournalEntry | None:
        """Create the child run and the parent's journal entry for it, atomically.

        Returns the entry as stored (already completed if the child had finished; failed if
        the child id belongs to another run's child or to a top-level run), or None when
        fenced.
        """
        result: JournalEntry | None = await self._write(
            partial(start_child, lease, entry, child, now)
        )
        return result

    async def suspend_run(self, lease: Lease, suspension: Suspension, now: float) -> bool:
        """Evict a run until its wake condition; pending at once if it is already met."""
        return bool(await self._write(partial(suspend_run, lease, suspension, now)))

    async def finish_run(
        self,
        lease: Lease,
        status: RunStatus,
        output: str | None,
        error: str | None,
        now: float,
    ) -> bool:
        """End a run (completed, failed, cancelled or parked) and resolve its parent's wait."""
        return bool(await self._write(partial(finish_run, lease, status, output, error, now)))

    async def cancel_children(self, run_id: str, now: float) -> int:
        """Ask the attached children of an ending run that still run to cancel; how many.

        Its own transaction (children first, never with the parent's row locked), so a
        child finishing at the same moment cannot deadlock with it.
        """
        return int(await self._write(partial(cancel_children, run_id, now)))

    async def release_run(self, lease: Lease, now: float) -> bool:
        """Give a run back (graceful shutdown): pending again, for any worker."""
        return bool(await self._write(partial(release_run, lease, now)))
