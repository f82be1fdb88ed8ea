"""Cancellation and run timeouts: where a stop is delivered and how it is recorded.

A cancel request or the run's own deadline reaches workflow code as
``asyncio.CancelledError`` at one position, which is journalled (a ``cancel`` entry at the
frontier, or the waiting entry marked cancelled), so a replay raises it at the same place.
While the run is in memory the worker delivers it at once: waits are woken to deliver it
where they stand, and steps in flight are cancelled (async ones) or told through
``legato.heartbeat()`` (sync ones) by the host.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

from ..records import EntryKind, EntryStatus, JournalEntry
from .journal import TIMEOUT, ContextBase


class Cancellation(ContextBase):
    """Deciding and recording that the run stops."""

    def stop_requested(self) -> bool:
        """A cancel was asked for, or the run's timeout passed, and the code has not seen it.

        Never while compensating: a rollback that stopped half-way would be worse than none.
        """
        if self.cancel_delivered or self.compensating:
            return False
        return self.cancel_requested or (
            self.deadline is not None and self.host.now() >= self.deadline
        )

    def _stop_due(self) -> bool:
        """A stop is requested and this worker delivers it (a run leaving this worker does
        not: the next one does); notes why."""
        if self._leaving() or not self.stop_requested():
            return False
        self.cancel_reason = "cancel" if self.cancel_requested else TIMEOUT
        return True

    def stop_pending(self) -> bool:
        """A stop is due and the code is still to be told (the host wakes and cancels)."""
        return self._stop_due()

    def _stop_error(self) -> str:
        how = "the run's timeout" if self.cancel_reason == TIMEOUT else "a cancellation"
        return json.dumps({"type": self.cancel_reason, "message": "ended by " + how})

    async def _deliver_cancel(self, seq: str) -> None:
        """At the frontier of a run asked to stop: record where and why, then raise."""
        if self._stop_due():
            self.cancel_delivered = True
            now = self.host.now()
            await self.host.persist(
                [
                    JournalEntry(
                        self.run_id,
                        seq,
                        EntryKind.CANCEL,
                        self.cancel_reason,
                        EntryStatus.COMPLETED,
                        started_at=now,
                        ended_at=now,
                    )
                ]
            )
            raise asyncio.CancelledError(f"run {self.run_id} was {self._stopped_how()}")

    async def _cancel_at(self, entry: JournalEntry) -> None:
        """Deliver a due cancel (or timeout) where ``entry`` stands: mark it, then raise."""
        self.cancel_delivered = True
        now = self.host.now()
        await self.host.persist(
            [replace(entry, status=EntryStatus.CANCELLED, ended_at=now, error=self._stop_error())]
        )
        raise asyncio.CancelledError(f"run {self.run_id} was {self._stopped_how()}")

    def _leaving(self) -> bool:
        """The run leaves this worker (evicted, released, lost): nothing is recorded."""
        return self.evicting or self.lost

    def _abandon(self, entry: JournalEntry) -> None:
        """The workflow itself cancelled this wait or step (a race it lost, a TaskGroup or
        ``asyncio.timeout`` that gave up on it): record it, so a replay does not run or
        satisfy it again but leaves it to the same construct to cancel once more."""
        if not self._leaving() and entry.status is not EntryStatus.ABANDONED:
            now = self.host.now()
            self.host.persist_nowait([replace(entry, status=EntryStatus.ABANDONED, ended_at=now)])
