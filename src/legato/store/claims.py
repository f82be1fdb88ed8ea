"""Claiming runnable runs under the queues' limits, and the queues themselves."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from ..records import ClaimedRun, JournalEntry, QueueLimits, SignalRecord
from .claiming import (
    Candidate,
    QueueLoad,
    candidate_from_row,
    choose,
    loads_from_rows,
    rate_windows,
    scan_size,
)
from .ops import WORK, Op, count, one, rows, status_changed
from .plumbing import Plumbing
from .rows import entry_from_row, queue_from_row, queue_params, run_from_row, signal_from_row

CANDIDATES = ("candidates_expired", "candidates_due", "candidates_pending")
"""Runs with an expired lease first, then due timers, then new runs by priority and age.
Three statements, so each uses its own index (and PostgreSQL can lock with SKIP LOCKED)."""


def claim_runs(
    owner: str,
    limit: int,
    now: float,
    lease_now: float,
    lease_seconds: float,
    workflows: Sequence[str],
    families: Sequence[str],
    queues: Sequence[str],
    capabilities: Sequence[str],
) -> Op[list[ClaimedRun]]:
    # Locking the limited queues' rows makes claims on them take turns (PostgreSQL), so
    # the last free slot goes to one worker only; SQLite has one writer anyway.
    found = yield rows("lock_queue_limits", queues=list(queues))
    limits = {q.name: q for q in map(queue_from_row, found)}
    params = {
        "now": now,
        "lease_now": lease_now,
        "scan": scan_size(limit, limits),
        "workflows": list(workflows),
        "families": list(families),
        "queues": list(queues),
        "capabilities": list(capabilities),
    }
    candidates: list[Candidate] = []
    expired: dict[str, str | None] = {}  # run id -> the worker whose lease expired
    for name in CANDIDATES:
        batch = yield rows(name, **params)
        if name == "candidates_expired":
            expired = {r["run_id"]: r["owner"] for r in batch}
        candidates.extend(candidate_from_row(r) for r in batch)
    loads = (yield from queue_loads(limits, now, lease_now)) if limits else {}
    ids = choose(candidates, limit, limits, loads)
    if not ids:
        return []
    claimed = yield rows(
        "claim_chosen", owner=owner, now=now, lease_until=lease_now + lease_seconds, ids=ids
    )
    runs = {r.run_id: r for r in map(run_from_row, claimed)}
    journals: dict[str, dict[str, JournalEntry]] = {i: {} for i in ids}
    for row in (yield rows("claimed_journals", ids=ids)):
        entry = entry_from_row(row)
        journals[entry.run_id][entry.seq] = entry
    signals: dict[str, list[SignalRecord]] = {i: [] for i in ids}
    for row in (yield rows("claimed_signals", ids=ids)):
        signal = signal_from_row(row)
        signals[signal.run_id].append(signal)
    for run_id in runs:
        yield status_changed(run_id, "running")
    return [
        ClaimedRun(runs[i], journals[i], signals[i], i in expired, expired.get(i))
        for i in ids
        if i in runs
    ]


def any_runnable(
    now: float,
    lease_now: float,
    workflows: Sequence[str],
    families: Sequence[str],
    queues: Sequence[str],
    capabilities: Sequence[str],
) -> Op[bool]:
    row = yield one(
        "any_runnable",
        now=now,
        lease_now=lease_now,
        workflows=list(workflows),
        families=list(families),
        queues=list(queues),
        capabilities=list(capabilities),
    )
    return bool(row["found"])


def queue_loads(
    limits: dict[str, QueueLimits], now: float, lease_now: float
) -> Op[dict[str, QueueLoad]]:
    running = yield rows("queue_running", queues=list(limits), lease_now=lease_now)
    loads = loads_from_rows(limits, running)
    for name, since in rate_windows(limits, now).items():
        loads[name].recent_starts = (yield one("queue_starts", queue=name, since=since))["n"]
    return loads


def set_queue(limits: QueueLimits) -> Op[None]:
    yield count("upsert_queue", **queue_params(limits))
    yield WORK


def list_queues() -> Op[list[QueueLimits]]:
    return [queue_from_row(r) for r in (yield rows("list_queues"))]


def next_wake_at(
    workflows: Sequence[str],
    families: Sequence[str],
    queues: Sequence[str],
    capabilities: Sequence[str],
) -> Op[tuple[float | None, float | None]]:
    row = yield one(
        "next_wake",
        workflows=list(workflows),
        families=list(families),
        queues=list(queues),
        capabilities=list(capabilities),
    )
    return row["timer"], row["lease"]


class Claims(Plumbing):
    def _claim_starting(self) -> None:
        """Called before each claim (PostgreSQL resets its "something changed" flag)."""

    async def claim_runs(
        self,
        owner: str,
        limit: int,
        now: float,
        lease_now: float,
        lease_seconds: float,
        workflows: Sequence[str],
        queues: Sequence[str] = ("default",),
        families: Sequence[str] = (),
        capabilities: Sequence[str] = (),
    ) -> list[ClaimedRun]:
        """Take up to ``limit`` runnable runs (pending, due, or with an expired lease) of
        the named ``workflows`` or of a workflow family (a name starting with one of
        ``families``, e.g. ``blueprint:``) in the served queues, within the queues' limits
        (see :class:`QueueLimits`), and only runs whose ``requires`` are all among
        ``capabilities`` (a blueprint's functions and task kinds): a worker only takes
        runs whose code it has."""
        self._claim_starting()
        result: list[ClaimedRun] = await self._write(
            partial(
                claim_runs,
                owner,
                limit,
                now,
                lease_now,
                lease_seconds,
                workflows,
                families,
                queues,
                capabilities,
            )
        )
        return result

    async def any_runnable(
        self,
        now: float,
        lease_now: float,
        workflows: Sequence[str],
        queues: Sequence[str] = ("default",),
        families: Sequence[str] = (),
        capabilities: Sequence[str] = (),
    ) -> bool:
        """Whether :meth:`claim_runs` would find a candidate (before queue limits): a read,
        so an idle worker can look now and then without taking a write lock."""
        return bool(
            await self._read(
                partial(any_runnable, now, lease_now, workflows, families, queues, capabilities)
            )
        )

    async def set_queue(self, limits: QueueLimits) -> None:
        """Create or replace a queue's limits (they apply to every worker at once)."""
        await self._write(partial(set_queue, limits))

    async def list_queues(self) -> list[QueueLimits]:
        """Queues that have limits set."""
        result: list[QueueLimits] = await self._read(list_queues)
        return result

    async def next_wake_at(
        self,
        workflows: Sequence[str],
        queues: Sequence[str] = ("default",),
        families: Sequence[str] = (),
        capabilities: Sequence[str] = (),
    ) -> tuple[float | None, float | None]:
        """(earliest timer, earliest lease expiry) among the runs a worker with these
        workflows, families, queues and capabilities could claim: when it must look again."""
        result: tuple[float | None, float | None] = await self._read(
            partial(next_wake_at, workflows, families, queues, capabilities)
        )
        return result
