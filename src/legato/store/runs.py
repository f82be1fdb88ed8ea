"""Runs as clients see them: create, look up, list, cancel, pause, redrive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import RunChanged, RunNotFound
from ..records import JournalEntry, NewRun, Pause, PauseScope, RunRecord, RunStatus
from .ops import WORK, Op, arrived, count, one, rows, status_changed
from .plumbing import Plumbing
from .rows import entry_from_row, new_run_params, pause_from_row, run_from_row


def create_run(new: NewRun, now: float) -> Op[tuple[RunRecord, bool]]:
    created = yield count("insert_run", **new_run_params(new, now))
    row = yield one("get_run", run_id=new.run_id)
    if created:
        yield WORK
        yield status_changed(new.run_id, RunStatus.PENDING.value)
    return run_from_row(row), created == 1


def get_run(run_id: str) -> Op[RunRecord | None]:
    row = yield one("get_run", run_id=run_id)
    return run_from_row(row) if row else None


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a listing (or its count) covers; times are ``created_at`` bounds."""

    status: RunStatus | None = None
    workflow: str | None = None
    queue: str | None = None
    created_after: float | None = None
    created_before: float | None = None

    def params(self) -> dict[str, Any]:
        return {
            "status": self.status.value if self.status else None,
            "workflow": self.workflow,
            "queue": self.queue,
            "created_after": self.created_after,
            "created_before": self.created_before,
        }


def list_runs(where: RunFilter, limit: int, after: tuple[float, str] | None) -> Op[list[RunRecord]]:
    cursor_at, cursor_id = after if after is not None else (None, None)
    found = yield rows(
        "list_runs", **where.params(), limit=limit, cursor_at=cursor_at, cursor_id=cursor_id
    )
    return [run_from_row(r) for r in found]


def count_runs(where: RunFilter) -> Op[int]:
    return int((yield one("count_runs", **where.params()))["n"])


def run_statuses(run_ids: Sequence[str]) -> Op[dict[str, RunStatus]]:
    found = yield rows("run_statuses", run_ids=list(run_ids))
    return {r["run_id"]: RunStatus(r["status"]) for r in found}


def get_journal(run_id: str) -> Op[list[JournalEntry]]:
    found = yield rows("get_journal", run_id=run_id)
    return [entry_from_row(r) for r in found]


def request_cancel(run_id: str, now: float) -> Op[RunRecord]:
    yield count("request_cancel", run_id=run_id, now=now)
    row = yield one("get_run", run_id=run_id)
    if row is None:
        raise RunNotFound(run_id)
    yield WORK
    yield arrived(run_id)
    return run_from_row(row)


def set_paused(scope: PauseScope, name: str, paused: bool, now: float) -> Op[None]:
    if scope is PauseScope.RUN:
        if (yield count("set_run_paused", run_id=name, paused=paused, now=now)) == 0:
            raise RunNotFound(name)
    else:
        params = {"scope": scope.value, "name": name, "now": now}
        yield count("insert_pause" if paused else "delete_pause", **params)
    if not paused:
        yield WORK


def list_pauses() -> Op[list[Pause]]:
    return [pause_from_row(r) for r in (yield rows("list_pauses"))]


def redrive_run(
    run_id: str, status: RunStatus, drop_seqs: Sequence[str], now: float
) -> Op[RunRecord]:
    if (yield count("redrive_run", run_id=run_id, status=status.value, now=now)) == 0:
        if (yield one("get_run", run_id=run_id)) is None:
            raise RunNotFound(run_id)
        raise RunChanged(
            f"run {run_id!r} is no longer {status.value}: it changed meanwhile; "
            "look at it again (legato runs show) before retrying"
        )
    for seq in drop_seqs:
        yield count("delete_entry", run_id=run_id, seq=seq)
        yield count("unconsume_signal", run_id=run_id, seq=seq)
    yield WORK
    yield status_changed(run_id, RunStatus.PENDING.value)
    return run_from_row((yield one("get_run", run_id=run_id)))


class Runs(Plumbing):
    async def create_run(self, new: NewRun, now: float) -> tuple[RunRecord, bool]:
        """Create a pending run, or return the existing one with that id (``created=False``)."""
        result: tuple[RunRecord, bool] = await self._write(partial(create_run, new, now))
        return result

    async def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        result: RunRecord | None = await self._read(partial(get_run, run_id))
        return result

    async def list_runs(
        self,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        queue: str | None = None,
        after: tuple[float, str] | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> list[RunRecord]:
        """Newest first (by ``created_at``, then id); ``after`` is the (created_at, run_id)
        of the last run of the previous page: pages stay exact while runs are added."""
        where = RunFilter(status, workflow, queue, created_after, created_before)
        result: list[RunRecord] = await self._read(partial(list_runs, where, limit, after))
        return result

    async def count_runs(
        self,
        status: RunStatus | None = None,
        workflow: str | None = None,
        queue: str | None = None,
        created_after: float | None = None,
        created_before: float | None = None,
    ) -> int:
        """How many runs :meth:`list_runs` would page through with these filters."""
        where = RunFilter(status, workflow, queue, created_after, created_before)
        return int(await self._read(partial(count_runs, where)))

    async def run_statuses(self, run_ids: Sequence[str]) -> dict[str, RunStatus]:
        """The status of each of these runs (one read, for the change feed's waiters)."""
        result: dict[str, RunStatus] = await self._read(partial(run_statuses, run_ids))
        return result

    async def get_journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal, in the order entries were first written."""
        result: list[JournalEntry] = await self._read(partial(get_journal, run_id))
        return result

    async def request_cancel(self, run_id: str, now: float) -> RunRecord:
        """Ask a run to cancel; wakes it if it waits. Returns the run as it now stands."""
        result: RunRecord = await self._write(partial(request_cancel, run_id, now))
        return result

    async def set_paused(self, scope: PauseScope, name: str, paused: bool, now: float) -> None:
        """Pause or resume one run, every run of a workflow, or a queue.

        Paused runs are never claimed; a worker holding one lets its in-flight step finish
        and releases it (it learns at its next heartbeat). RunNotFound for an unknown run.
        """
        await self._write(partial(set_paused, scope, name, paused, now))

    async def list_pauses(self) -> list[Pause]:
        """Paused workflows and queues (paused single runs show on the run)."""
        result: list[Pause] = await self._read(list_pauses)
        return result

    async def redrive_run(
        self, run_id: str, status: RunStatus, drop_seqs: Sequence[str], now: float
    ) -> RunRecord:
        """Run an ended (or parked) run again from its journal, minus ``drop_seqs``.

        Atomic: only if the run is still in ``status`` (RunChanged otherwise). Signals that
        dropped entries consumed are buffered again; the run becomes pending and its
        ``redrives`` count grows. Kept entries are replayed, dropped ones run again.
        """
        result: RunRecord = await self._write(partial(redrive_run, run_id, status, drop_seqs, now))
        return result
