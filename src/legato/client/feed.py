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
import logging

from ..outages import Outage
from ..records import RunStatus
from ..store import Store

log = logging.getLogger(__name__)

CHECK_SECONDS = 0.01
"""How often the feed asks whether another process committed, when changes are not pushed."""


def settled(status: RunStatus) -> bool:
    """Ended (completed, failed, cancelled) or parked: what ``wait`` waits for."""
    return status.is_terminal or status is RunStatus.PARKED


class RunFeed:
    """Wakes waiters of runs when those runs change status. One per client."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._checker: asyncio.Task[None] | None = None
        self._listening = False
        self._token: int | None = None
        self._outage = Outage(log, "waiting for runs: the database")

    def _on_status(self, run_id: str, status: str) -> None:  # any thread
        if run_id and run_id not in self._waiters:
            return
        try:
            ended = settled(RunStatus(status))
        except ValueError:  # "" (some run changed) or a status this Legato does not know
            ended = True
        if ended:
            self._wake(run_id)

    def _wake(self, run_id: str) -> None:
        """Wake the waiters of ``run_id`` ("": of every run, to look again), each on its
        own event loop (a client may be used from several; this may run on any thread)."""
        if run_id:
            targets = [set(self._waiters.get(run_id, ()))]
        else:
            targets = [set(w) for w in list(self._waiters.values())]
        for waiters in targets:
            for loop, event in waiters:
                with contextlib.suppress(RuntimeError):  # that loop has closed
                    loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        self._stop_listening()
        if self._checker is not None:
            self._checker.cancel()
            self._checker = None

    def _stop_listening(self) -> None:
        if self._listening:
            self._store.remove_listener(self._on_status)
            self._listening = False

    @contextlib.asynccontextmanager
    async def watching(self, run_id: str):  # type: ignore[no-untyped-def]
        """While inside, the event yielded is set whenever ``run_id`` may have ended."""
        loop = asyncio.get_running_loop()
        if not self._listening:
            self._store.add_status_listener(self._on_status)
            self._listening = True
        event = asyncio.Event()
        mine = (loop, event)
        self._waiters.setdefault(run_id, set()).add(mine)
        checker = self._checker
        if checker is None or checker.done() or checker.get_loop().is_closed():
            # The baseline is taken before the waiter reads its run: a change after the
            # read moves the token, so the checker cannot miss it (nor read for nothing).
            try:
                self._token = await self._store.change_token()
            except Exception:
                self._token = None  # the checker reads at once
            self._checker = loop.create_task(self._check_others())
        try:
            yield event
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(mine)
                if not waiters:
                    del self._waiters[run_id]
            if not self._waiters:
                self._stop_listening()

    async def _check_others(self) -> None:
        """Stand in for pushed notices from other processes while anyone waits."""
        while self._waiters:
            await asyncio.sleep(CHECK_SECONDS)
            if self._store.changes_are_pushed or not self._waiters:
                continue
            try:
                # This feed's own token: a worker asking data_changed() of the same store
                # must not take the change from it (nor it from the worker).
                token = await self._store.change_token()
                if token == self._token:
                    continue
                self._token = token
                ids = list(self._waiters)
                statuses = await self._store.run_statuses(ids)
            except Exception as exc:  # the database is away for a moment: look again
                self._outage.failed(exc, f"checking again every {CHECK_SECONDS * 10:g} s")
                self._token = None
                await asyncio.sleep(CHECK_SECONDS * 10)
                continue
            self._outage.ok()
            for run_id, status in statuses.items():
                if settled(status):
                    self._wake(run_id)
