"""Waiting for runs to end on the store's change feed, not by polling.

Every commit that changes a run's status sends a notice (see ``legato.store.ops``). This
process's commits reach the feed at once (stores of one database in one process share
their listeners); other processes' arrive by ``LISTEN`` on PostgreSQL. On SQLite, another
process's commits cannot be pushed: the feed then asks the database whether anything
changed at all (``PRAGMA data_version``, no table read) every few milliseconds, and only
when it did reads the status of every awaited run in one query.

A waiter therefore reads its run when it starts and when the feed says it changed: a run
that works for an hour costs its waiter a handful of reads, not one every 50 ms.
"""

from __future__ import annotations

import asyncio
import contextlib

from ..records import RunStatus
from ..store import Store

CHECK_SECONDS = 0.01
"""How often the feed asks whether another process committed, when changes are not pushed."""


def settled(status: RunStatus) -> bool:
    """Ended (completed, failed, cancelled) or parked: what ``wait`` waits for."""
    return status.is_terminal or status is RunStatus.PARKED


class RunFeed:
    """Wakes waiters of runs when those runs change status. One per client."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._checker: asyncio.Task[None] | None = None
        self._listening = False

    def _on_status(self, run_id: str, status: str) -> None:  # any thread
        loop = self._loop
        if loop is None or run_id not in self._waiters:
            return
        try:
            ended = settled(RunStatus(status))
        except ValueError:  # not a status this Legato knows: look, to be safe
            ended = True
        if ended:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(self._wake, run_id)

    def _wake(self, run_id: str) -> None:
        for event in self._waiters.get(run_id, ()):
            event.set()

    def _ensure_listening(self) -> None:
        if not self._listening:
            self._loop = asyncio.get_running_loop()
            self._store.add_status_listener(self._on_status)
            self._listening = True

    def close(self) -> None:
        if self._listening:
            self._store.remove_listener(self._on_status)
            self._listening = False
        if self._checker is not None:
            self._checker.cancel()
            self._checker = None

    @contextlib.asynccontextmanager
    async def watching(self, run_id: str):  # type: ignore[no-untyped-def]
        """While inside, the event yielded is set whenever ``run_id`` may have changed."""
        self._ensure_listening()
        event = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(event)
        if self._checker is None or self._checker.done():
            self._checker = asyncio.get_running_loop().create_task(self._check_others())
        try:
            yield event
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[run_id]

    async def _check_others(self) -> None:
        """Stand in for pushed notices from other processes while anyone waits."""
        while self._waiters:
            await asyncio.sleep(CHECK_SECONDS)
            if self._store.changes_are_pushed or not self._waiters:
                continue
            if not await self._store.data_changed():
                continue
            ids = list(self._waiters)
            for run_id, status in (await self._store.run_statuses(ids)).items():
                if settled(status):
                    self._wake(run_id)
