"""SQLite connections and the writer thread that groups commits.

Why one writer thread: SQLite allows one writer at a time. Rather than let many
connections fight over the lock (and surface "database is locked"), every write of this
process is queued to a single thread that drains the queue into one transaction and
commits once. Twenty steps finishing in the same millisecond cost one commit, not twenty.
Other processes (the CLI, a second worker) are serialised by SQLite's file lock; a busy
lock is waited out and retried for as long as it takes, never reported as an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

_MAX_BATCH = 512
_BUSY_LOG_AFTER = 5.0


class Conn(sqlite3.Connection):
    """A connection whose reads always finish their statement.

    A cursor left half-read keeps its read transaction (and so an old snapshot of the
    database) open; ``one`` and ``all`` consume and close the cursor every time.
    """

    def one(self, sql: str, params: Any = ()) -> Any:
        cur = self.execute(sql, params)
        try:
            return cur.fetchone()
        finally:
            cur.close()

    def all(self, sql: str, params: Any = ()) -> list[Any]:
        cur = self.execute(sql, params)
        try:
            return cur.fetchall()
        finally:
            cur.close()


Op = Callable[[Conn], Any]


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class Writer(threading.Thread):
    """Drains queued write operations into grouped transactions."""

    def __init__(self, connect: Callable[[], Conn]) -> None:
        super().__init__(name="legato-sqlite-writer", daemon=True)
        self._connect = connect
        self.queue: queue.SimpleQueue[tuple[Op, asyncio.Future[Any] | None] | None] = (
            queue.SimpleQueue()
        )
        self.commits = 0
        self.ops = 0

    def run(self) -> None:
        conn = self._connect()
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    return
                batch = [item]
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        nxt = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                nxt = None
                self._run_batch(conn, batch)
                del batch, item  # an idle writer must not keep the last ops (and runs) alive
                if stop:
                    return
        finally:
            conn.close()

    def _run_batch(self, conn: Conn, batch: list[tuple[Op, asyncio.Future[Any] | None]]) -> None:
        try:
            results = self._run_group(conn, batch)
        except _OpFailed:
            # One write failed: run each again in a transaction of its own, so the others
            # still commit and only the failing one reports its error.
            results = [self._run_group(conn, [item], isolated=True)[0] for item in batch]
        except Exception as batch_error:  # e.g. disk I/O error: every op of the group fails
            log.error("SQLite write group of %d failed: %s", len(batch), batch_error)
            results = [(fut, None, batch_error) for _, fut in batch]
        self.commits += 1
        self.ops += len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, Any]]] = {}
        for fut, value, error in results:
            if fut is not None:
                by_loop.setdefault(fut.get_loop(), []).append((fut, value, error))
        for loop, items in by_loop.items():
            # RuntimeError: that loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve_all, items)

    def _run_group(
        self,
        conn: Conn,
        batch: list[tuple[Op, asyncio.Future[Any] | None]],
        isolated: bool = False,
    ) -> list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]]:
        """Run ops in one transaction. With ``isolated``, an op's error is its result."""
        results: list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]] = []
        begin_immediate(conn)
        try:
            for op, fut in batch:
                try:
                    results.append((fut, op(conn), None))
                except Exception as exc:
                    if not isolated:
                        raise _OpFailed from exc
                    if fut is None:
                        log.error("background write failed: %s", exc, exc_info=exc)
                    conn.execute("ROLLBACK")
                    return [(fut, None, exc)]
            retry_busy(lambda: conn.execute("COMMIT"))
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return results


class _OpFailed(Exception):
    """An op of a grouped transaction raised; the group is re-run op by op."""


def _resolve_all(items: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for fut, value, exc in items:
        if fut.done():
            continue
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


def retry_busy(fn: Callable[[], T]) -> T:
    """Run ``fn``, waiting out SQLITE_BUSY from other processes for as long as it takes."""
    started = time.monotonic()
    delay = 0.001
    warned = False
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            waited = time.monotonic() - started
            if waited > _BUSY_LOG_AFTER and not warned:
                log.warning("SQLite database busy for %.1fs; still waiting", waited)
                warned = True
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def begin_immediate(conn: Conn) -> None:
    retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
