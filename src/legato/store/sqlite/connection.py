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

from ...errors import Unavailable
from ...outages import Outage
from ..ops import Notice, Sql, drive
from ..plumbing import CommitCounter, OpCall

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


Item = tuple[OpCall, "asyncio.Future[Any] | None"]


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _OpLeftChanges(Exception):
    """An op of a group without savepoints failed after changing rows."""


class Writer(threading.Thread):
    """Drains queued write operations into grouped transactions.

    An op that fails reports its error and undoes only its own changes; the others of
    the group still commit, in the same single commit. Savepoints would give that at
    the cost of two statements per op (each a GIL round trip on this thread), so a
    group runs without them and only one whose failed op had changed rows runs again
    with a savepoint per op. ``peek`` runs a read on the writer's
    own connection outside any transaction (``PRAGMA data_version`` there ignores this
    process's own commits), so change detection takes no write lock.
    """

    def __init__(
        self,
        connect: Callable[[], Conn],
        execute: Callable[[Conn, Sql], Any],
        on_commit: Callable[[list[Notice]], None],
    ) -> None:
        super().__init__(name="legato-sqlite-writer", daemon=True)
        self._connect = connect
        self._execute = execute
        self._queue: queue.SimpleQueue[tuple[OpCall, asyncio.Future[Any] | None, bool] | None] = (
            queue.SimpleQueue()
        )
        self._failure: BaseException | None = None
        self._closing = False
        self.counter = CommitCounter(on_commit)
        self.outage = Outage(log, "the SQLite writer")

    def submit(self, call: OpCall, peek: bool = False) -> asyncio.Future[Any]:
        """Queue ``call()``'s operation; the future (of the caller's loop) resolves after
        its group commits. Raises Unavailable if the writer cannot write any more."""
        if self._closing:
            raise Unavailable("the store is closing: open it again to write")
        if self._failure is not None or not self.is_alive():
            raise Unavailable(f"the SQLite writer has stopped: {self._failure or 'closed'}")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put((call, fut, peek))
        return fut

    def stop(self) -> None:
        """Write what is queued, then stop; a write submitted from now on is refused."""
        self._closing = True
        self._queue.put(None)
        self.join()
        self._drain_failed(Unavailable("the store closed before this write ran"))

    def run(self) -> None:
        try:
            conn = self._connect()
        except BaseException as exc:
            self._failure = exc
            self._drain_failed(exc)
            return
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
                stop = False
                while len(batch) < _MAX_BATCH:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                nxt = None
                peeks = [(call, fut) for call, fut, peek in batch if peek]
                writes = [(call, fut) for call, fut, peek in batch if not peek]
                if peeks:
                    self._resolve([self._run_peek(conn, call, fut) for call, fut in peeks])
                if writes:
                    self._run_batch(conn, writes)
                del batch, item, peeks, writes  # an idle writer must not keep old ops alive
                if stop:
                    return
        except BaseException as exc:  # never leave a queued op waiting for ever
            self._failure = exc
            self._drain_failed(exc)
            raise
        finally:
            conn.close()

    def _drain_failed(self, exc: BaseException) -> None:
        """Fail every write still queued (none may wait for a writer that is gone)."""
        failed = exc if isinstance(exc, Unavailable) else Unavailable(f"the writer stopped: {exc}")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._resolve([(item[1], None, failed)])

    def _run_peek(
        self, conn: Conn, call: OpCall, fut: asyncio.Future[Any] | None
    ) -> tuple[asyncio.Future[Any] | None, Any, BaseException | None]:
        try:
            return fut, drive(call(), lambda sql: self._execute(conn, sql), []), None
        except Exception as exc:
            return fut, None, exc

    def _run_batch(self, conn: Conn, batch: list[Item]) -> None:
        try:
            try:
                results, notices = self._run_group(conn, batch, savepoints=False)
            except _OpLeftChanges:
                # An op failed after changing rows, which only a savepoint could undo
                # alone: the group was rolled back and runs again with one per op.
                results, notices = self._run_group(conn, batch, savepoints=True)
        except Exception as batch_error:  # e.g. disk I/O error: every op of the group fails
            failed = Unavailable(f"the SQLite write failed: {batch_error}")
            failed.__cause__ = batch_error
            self.outage.failed(failed, "each write group tries again; this one failed")
            self._resolve([(fut, None, failed) for _, fut in batch])
            return
        except BaseException as fatal:  # the thread ends: nobody of the group may hang
            stopped = Unavailable(f"the SQLite writer stopped: {fatal!r}")
            self._resolve([(fut, None, stopped) for _, fut in batch])
            raise
        self.outage.ok()
        self.counter.committed(len(batch), notices)
        self._resolve(results)

    def _run_group(
        self, conn: Conn, batch: list[Item], savepoints: bool
    ) -> tuple[list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]], list[Notice]]:
        """The ops of ``batch`` in one transaction, committed; rolled back if it raises."""
        results: list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]] = []
        notices: list[Notice] = []
        begin_immediate(conn)
        try:
            for call, fut in batch:
                results.append(self._run_op(conn, call, fut, notices, savepoints))
            retry_busy(lambda: conn.execute("COMMIT"))
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        return results, notices

    def _run_op(
        self,
        conn: Conn,
        call: OpCall,
        fut: asyncio.Future[Any] | None,
        notices: list[Notice],
        savepoint: bool,
    ) -> tuple[asyncio.Future[Any] | None, Any, BaseException | None]:
        """One op. Without a savepoint, a failure that changed no row (a refusal after
        reads, or a statement SQLite undid by itself) needs nothing undone, so most
        groups cost one statement per statement of their ops; a failure that did change
        rows, or after which SQLite had rolled the transaction back, raises
        :class:`_OpLeftChanges` for the group to run again with savepoints."""
        if savepoint:
            conn.execute("SAVEPOINT op")
        changes = conn.total_changes
        mine: list[Notice] = []
        try:
            value = drive(call(), lambda sql: self._execute(conn, sql), mine)
        except Exception as exc:
            if savepoint:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
            elif conn.total_changes != changes or not conn.in_transaction:
                # Not in a transaction: SQLite rolled the whole group back (a full disk
                # can), so the ops after this one would run in autocommit.
                raise _OpLeftChanges from exc
            if fut is None:
                log.error("background write failed: %s", exc, exc_info=exc)
            return fut, None, exc
        if savepoint:
            conn.execute("RELEASE op")
        notices.extend(mine)
        return fut, value, None

    @staticmethod
    def _resolve(
        results: list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]],
    ) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, Any, Any]]] = {}
        for fut, value, error in results:
            if fut is not None:
                by_loop.setdefault(fut.get_loop(), []).append((fut, value, error))
        for loop, items in by_loop.items():
            # RuntimeError: that loop is closed, so nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve_all, items)


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
