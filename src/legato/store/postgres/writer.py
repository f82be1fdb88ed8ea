"""The PostgreSQL writer: one connection, writes of this process grouped per transaction.

A group runs its ops one after another in one transaction and commits once. If an op
fails, the group is rolled back once and run again with a savepoint around each op, in one
transaction again: the failing op alone reports its error and the others commit (with one
commit). The first pass has no savepoints because each costs a round trip, and failures
are rare. A lost connection, in any phase, fails the ops in flight with ``Unavailable``
and the next group reconnects: the writer never stops while the store is open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from ...errors import Conflict, Unavailable
from ...outages import Outage
from ..ops import WORK, Notice, NoticeKind, Sql, drive_async
from ..plumbing import CommitCounter, OpCall
from .statements import Q

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[dict[str, Any]]
Item = tuple[OpCall, asyncio.Future[Any] | None]
Result = tuple[asyncio.Future[Any] | None, Any, BaseException | None]
_MAX_BATCH = 512
_RECONNECT_DELAY = 0.2


class _OpFailed(Exception):
    """An op of a grouped transaction raised; the group is run again with savepoints."""


_MAX_PAYLOAD = 7000
"""``pg_notify`` refuses payloads of 8000 bytes; a notice naming a longer run id is sent
as a general one instead (look for work / some run changed: re-read)."""


def _payload(notice: Notice) -> str:
    text = notice.encode()
    if len(text.encode()) <= _MAX_PAYLOAD:
        return text
    if notice.kind is NoticeKind.STATUS:
        return Notice(NoticeKind.STATUS).encode()
    return WORK.encode()


def translate(exc: psycopg.Error, what: str) -> Exception:
    """A psycopg error as the Legato error a caller can act on."""
    if isinstance(exc, psycopg.errors.IntegrityError):
        return Conflict(f"the database refused {what}: {exc}")
    return Unavailable(f"PostgreSQL failed in {what}: {exc}")


async def execute(conn: Conn, sql: Sql) -> Any:
    try:
        cur = await conn.execute(Q[sql.name], sql.params)
        if sql.fetch == "one":
            return await cur.fetchone()
        if sql.fetch == "all":
            return await cur.fetchall()
        return cur.rowcount
    except psycopg.Error as exc:
        if conn.broken:
            raise  # the connection is gone, not this op's fault: the writer handles it
        raise translate(exc, sql.name) from exc


class GroupWriter:
    """Runs queued write operations in grouped transactions on one connection."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Conn]],
        channel: str,
        on_commit: Callable[[list[Notice]], None],
    ) -> None:
        self._connect = connect
        self._channel = channel
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.backend_pid: int | None = None  # of the current connection (for operators, tests)
        self.counter = CommitCounter(on_commit)
        self.outage = Outage(log, "the PostgreSQL writer")

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop(), name="legato-postgres-writer")

    async def stop(self) -> None:
        """Finish what is queued, then close the connection.

        Shielded: a caller that gives up on closing (a timeout, Ctrl-C) does not cancel
        the writes in flight, which still end (committed or failed), never left hanging.
        """
        if self._task is not None:
            self._stopping = True
            await self._queue.put(None)
            await asyncio.shield(self._task)
            self._task = None

    def submit(self, call: OpCall) -> asyncio.Future[Any]:
        """Queue ``call()``'s op; the future resolves after its group commits."""
        if self._task is None or self._stopping:
            raise Unavailable("the store is not open (call open() first)")
        if self._task.done():
            raise Unavailable("the PostgreSQL writer has stopped: reopen the store")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((call, fut))
        return fut

    async def _write_loop(self) -> None:
        conn: Conn | None = None
        batch: list[Item] = []
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    break
                batch = [item]
                stop = False
                while len(batch) < _MAX_BATCH and not self._queue.empty():
                    nxt = self._queue.get_nowait()
                    if nxt is None:
                        stop = True
                        break
                    batch.append(nxt)
                nxt = None
                conn = await self._write_batch(conn, batch)
                batch = []  # an idle writer must not keep the last ops (and runs) alive
                del item
                if stop:
                    break
        except BaseException as fatal:  # cancelled or worse: nobody may wait for ever
            stopped = Unavailable(f"the PostgreSQL writer stopped: {fatal!r}")
            self._resolve([(fut, None, stopped) for _, fut in batch])
            raise
        finally:
            self._stopping = True
            self._drain(Unavailable("the store closed before this write ran"))
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()

    def _drain(self, failed: Exception) -> None:
        """Fail every write still queued."""
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None:
                self._resolve([(item[1], None, failed)])

    async def _write_batch(self, conn: Conn | None, batch: list[Item]) -> Conn | None:
        """Write one group; return the connection to use next (None: reconnect)."""
        try:
            if conn is None or conn.closed:
                conn = await self._connect()
                self.backend_pid = conn.info.backend_pid
            try:
                results, notices = await self._run_group(conn, batch, savepoints=False)
            except _OpFailed:
                results, notices = await self._run_group(conn, batch, savepoints=True)
        except Exception as exc:
            lost = conn is None or conn.broken or isinstance(exc, psycopg.OperationalError)
            if lost:
                failed: Exception = Unavailable(f"database connection lost: {exc}")
                self.outage.failed(failed, "reconnecting for the next write group")
            else:
                log.error("PostgreSQL write group of %d failed: %s", len(batch), exc)
                failed = exc if not isinstance(exc, psycopg.Error) else translate(exc, "a write")
            failed.__cause__ = exc
            self._resolve([(fut, None, failed) for _, fut in batch])
            if lost:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                await asyncio.sleep(_RECONNECT_DELAY)
                return None
            return conn
        self.outage.ok()
        self.counter.committed(len(batch), notices)
        self._resolve(results)
        return conn

    async def _run_group(
        self, conn: Conn, batch: list[Item], savepoints: bool
    ) -> tuple[list[Result], list[Notice]]:
        results: list[Result] = []
        notices: list[Notice] = []
        async with conn.transaction():
            for call, fut in batch:
                mine: list[Notice] = []
                try:
                    if savepoints:
                        async with conn.transaction():  # a savepoint
                            value = await drive_async(call(), lambda s: execute(conn, s), mine)
                    else:
                        value = await drive_async(call(), lambda s: execute(conn, s), mine)
                except Exception as exc:
                    if conn.broken:
                        raise
                    if not savepoints:
                        raise _OpFailed from exc
                    if fut is None:
                        log.error("background write failed: %s", exc)
                    results.append((fut, None, exc))
                    continue
                results.append((fut, value, None))
                notices.extend(mine)
            if notices:  # delivered to every listening process when this commits
                payloads = list(dict.fromkeys(_payload(n) for n in notices))
                await conn.execute(Q["notify"], {"channel": self._channel, "payloads": payloads})
        return results, notices

    @staticmethod
    def _resolve(results: list[Result]) -> None:
        for fut, value, error in results:
            if fut is None or fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)
