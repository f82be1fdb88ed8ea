"""Events (CloudEvents envelopes) and the runs that listen for them."""

from __future__ import annotations

from functools import partial

from ..records import EventRecord
from .ops import WORK, Op, count, one, rows
from .plumbing import Plumbing
from .rows import event_from_row


def append_event(envelope: str, type: str, source: str, now: float) -> Op[int]:
    # Appends take turns until they commit (PostgreSQL), so ids become visible in
    # increasing order and a reader resuming "after id N" never skips a late commit.
    yield one("lock_events")
    row = yield one("insert_event", envelope=envelope, type=type, source=source, now=now)
    yield WORK  # workers holding listening runs look for it at once
    return int(row["id"])


def read_events(after_id: int, since: float, limit: int) -> Op[list[EventRecord]]:
    found = yield rows("read_events", after_id=after_id, since=since, limit=limit)
    return [event_from_row(r) for r in found]


def set_listening(run_id: str, listening: bool, now: float) -> Op[None]:
    if listening:
        yield count("insert_listener", run_id=run_id, now=now)
    else:
        yield count("delete_listener", run_id=run_id)


def listening_runs() -> Op[list[str]]:
    return [r["run_id"] for r in (yield rows("listening_runs"))]


class Events(Plumbing):
    async def append_event(self, envelope: str, type: str, source: str, now: float) -> int:
        """Store an event (``envelope`` is its JSON) and return its id.

        Ids increase in commit order, so a reader that remembers the last id it handled
        misses nothing by asking for the events after it.
        """
        return int(await self._write(partial(append_event, envelope, type, source, now)))

    async def read_events(self, after_id: int, since: float, limit: int = 100) -> list[EventRecord]:
        """Events with id above ``after_id`` published at or after ``since``, by id."""
        result: list[EventRecord] = await self._read(partial(read_events, after_id, since, limit))
        return result

    async def set_listening(self, run_id: str, listening: bool, now: float) -> None:
        """Mark a run as waiting for events (from ``now``), or no longer waiting.

        Marking a run that already listens keeps its first time, so no event published in
        between is lost.
        """
        await self._write(partial(set_listening, run_id, listening, now))

    async def listening_runs(self) -> list[str]:
        """Ids of the runs that wait for events, longest waiting first."""
        result: list[str] = await self._read(listening_runs)
        return result
