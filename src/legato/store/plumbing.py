"""What every store operation stands on: a way to write, a way to read, and notices.

The shared store (:mod:`legato.store.core`) is written against this class only. A backend
subclasses it and supplies the three things that really differ between databases:
``_submit`` (queue an operation for its grouped writer), ``_read`` (run an operation on a
read connection) and how notices reach other processes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .ops import Notice, NoticeKind, Op

log = logging.getLogger(__name__)

OpCall = Callable[[], Op[Any]]
"""Makes a fresh operation: a writer may need to run one again (see the writers)."""


class Hub:
    """The listeners of one database in this process, called after each commit.

    Stores opened on the same database in one process share a hub, so a client's commit
    wakes a worker of the same process at once, whichever store object made it.
    Callbacks may be called from any thread (SQLite's writer is a thread).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._work: list[Callable[[], None]] = []
        self._arrived: list[Callable[[str], None]] = []
        self._status: list[Callable[[str, str], None]] = []

    def add_work(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._work.append(callback)

    def add_arrived(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            self._arrived.append(callback)

    def add_status(self, callback: Callable[[str, str], None]) -> None:
        with self._lock:
            self._status.append(callback)

    def remove(self, callback: Callable[..., None]) -> None:
        with self._lock:
            for group in (self._work, self._arrived, self._status):
                if callback in group:
                    group.remove(callback)

    def deliver(self, notices: Iterable[Notice]) -> None:
        """Call the listeners; one that raises is logged and the others still hear."""
        work = False
        for notice in notices:
            if notice.kind is NoticeKind.WORK:
                work = True
            elif notice.kind is NoticeKind.ARRIVED:
                for on_arrived in list(self._arrived):
                    _call(on_arrived, notice.run_id)
            else:
                for on_status in list(self._status):
                    _call(on_status, notice.run_id, notice.status)
        if work:
            for on_work in list(self._work):
                _call(on_work)


def _call(callback: Callable[..., None], *args: str) -> None:
    try:
        callback(*args)
    except Exception:
        log.exception("a store listener failed")


class Plumbing:
    """The backend seam: submit a write, run a read, deliver notices."""

    url: str

    def __init__(self, url: str, hub: Hub) -> None:
        self.url = url
        self._hub = hub

    def _submit(self, call: OpCall) -> asyncio.Future[Any]:
        """Queue the operation ``call()`` makes; the future resolves after its commit."""
        raise NotImplementedError

    async def _read(self, call: OpCall) -> Any:
        """Run a read-only operation on a read connection."""
        raise NotImplementedError

    async def _write(self, call: OpCall) -> Any:
        return await self._submit(call)

    # -- notices -------------------------------------------------------------------------
    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (from any thread) after a commit makes new work runnable."""
        self._hub.add_work(callback)

    def add_run_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(run_id)`` (from any thread) when a signal, a cancel request or a
        child's end is committed for that run, by this process or (PostgreSQL) any other."""
        self._hub.add_arrived(callback)

    def add_status_listener(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(run_id, status)`` (from any thread) when a run changes status:
        the change feed. Across processes on PostgreSQL; see :meth:`changes_are_pushed`."""
        self._hub.add_status(callback)

    def remove_listener(self, callback: Callable[..., None]) -> None:
        self._hub.remove(callback)

    @property
    def changes_are_pushed(self) -> bool:
        """True if other processes' commits arrive as notices (PostgreSQL ``LISTEN``);
        False if a waiter must look at :meth:`data_changed` (SQLite across processes)."""
        return False

    async def data_changed(self) -> bool:
        """True if another process may have committed since the last call (cheap).

        One baseline per store: for its worker. Other consumers use :meth:`change_token`.
        """
        raise NotImplementedError

    async def change_token(self) -> int:
        """A value that changes whenever another process may have committed (cheap):
        each consumer keeps the last one it saw."""
        raise NotImplementedError


class CommitCounter:
    """What a writer has done (``stats``), and its notices handed on after each commit."""

    def __init__(self, on_commit: Callable[[list[Notice]], None]) -> None:
        self._on_commit = on_commit
        self.commits = 0
        self.ops = 0

    def committed(self, ops: int, notices: list[Notice]) -> None:
        self.commits += 1
        self.ops += ops
        if notices:
            try:
                self._on_commit(notices)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("a store listener failed")
