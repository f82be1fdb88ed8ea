"""Journal writes of a worker for the runs it holds (fenced by the lease)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from functools import partial

from ..records import JournalEntry
from .base import Lease
from .ops import Op, count, one
from .plumbing import Plumbing
from .rows import entry_params, report_write_failure


def holds(lease: Lease) -> Op[bool]:
    """Whether ``lease`` still holds the run (PostgreSQL also locks the row FOR SHARE)."""
    row = yield one("check_lease", run_id=lease.run_id, owner=lease.owner, epoch=lease.epoch)
    return row is not None


def upsert(lease: Lease, entry: JournalEntry) -> Op[bool]:
    """Write one entry if ``lease`` still holds (one statement checks and writes)."""
    written: int = yield count("upsert_entry", **entry_params(lease, entry))
    return written == 1


def record(lease: Lease, entries: Sequence[JournalEntry]) -> Op[bool]:
    ok = True
    for entry in entries:
        written = yield from upsert(lease, entry)
        ok = ok and written
    return ok


class Journal(Plumbing):
    async def record(self, lease: Lease, entries: Sequence[JournalEntry]) -> bool:
        """Insert or update journal entries (fenced). Durable when the call returns."""
        return bool(await self._write(partial(record, lease, entries)))

    def record_soon(self, lease: Lease, entries: Sequence[JournalEntry]) -> asyncio.Future[bool]:
        """Like :meth:`record`, as a future of the caller's loop (no task to create)."""
        return self._submit(partial(record, lease, entries))

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
        fut = self._submit(partial(record, lease, entries))
        fut.add_done_callback(report_write_failure(on_failure))
