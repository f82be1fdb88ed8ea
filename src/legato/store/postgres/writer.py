"""The PostgreSQL writer: one connection, writes of this process grouped per transaction.

A failing write makes the group re-run write by write (so only that one fails); a lost
connection fails the group's writes and reconnects for the next group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from ...errors import StoreError

log = logging.getLogger(__name__)

Conn = psycopg.AsyncConnection[dict[str, Any]]
Op = Callable[[Conn], Awaitable[Any]]
_MAX_BATCH = 512


class _OpFailed(Exception):
    """An op of a grouped transaction raised; the group is re-run op by op."""


class GroupWriter:
    """Runs queued write operations in grouped transactions on one connection."""

    def __init__(self, connect: Callable[[], Awaitable[Conn]]) -> None:
        self._connect = connect
        self._queue: asyncio.Queue[tuple[Op, asyncio.Future[Any] | None] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.ops = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._write_loop())

    async def stop(self) -> None:
        """Finish what is queued, then close the connection."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None

    def submit(self, op: Op) -> asyncio.Future[Any]:
        """Queue ``op``; the future resolves after its group commits."""
        if self._task is None:
            raise StoreError("the store is not open (call open() first)")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((op, fut))
        return fut

    async def _write_loop(self) -> None:
        conn: Conn | None = None
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
            if conn is None or conn.closed:
                try:
                    conn = await self._connect()
                except StoreError as exc:
                    conn = None
                    self._fail(batch, exc)
                    del batch, item
                    await asyncio.sleep(0.2)
                    continue
            conn = await self._run_batch(conn, batch)
            del batch, item  # an idle writer must not keep the last ops (and their runs) alive
            if stop:
                break
        if conn is not None:
            await conn.close()

    def _fail(self, batch: list[tuple[Op, asyncio.Future[Any] | None]], exc: BaseException) -> None:
        for _, fut in batch:
            if fut is not None and not fut.done():
                fut.set_exception(exc)

    async def _run_batch(
        self, conn: Conn, batch: list[tuple[Op, asyncio.Future[Any] | None]]
    ) -> Conn | None:
        try:
            results = await self._run_group(conn, batch)
        except _OpFailed:
            results = []
            for item in batch:
                results.extend(await self._run_group(conn, [item], isolated=True))
        except Exception as exc:
            if not conn.broken:
                log.error("PostgreSQL write group of %d failed: %s", len(batch), exc)
                self._fail(batch, exc)
                return conn
            log.error("PostgreSQL connection lost during a write group: %s", exc)
            self._fail(batch, StoreError(f"database connection lost: {exc}"))
            with contextlib.suppress(Exception):
                await conn.close()
            return None
        self.commits += 1
        self.ops += len(batch)
        for fut, value, error in results:
            if fut is None or fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(value)
        return conn

    async def _run_group(
        self,
        conn: Conn,
        batch: list[tuple[Op, asyncio.Future[Any] | None]],
        isolated: bool = False,
    ) -> list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]]:
        results: list[tuple[asyncio.Future[Any] | None, Any, BaseException | None]] = []
        try:
            async with conn.transaction():
                for op, fut in batch:
                    try:
                        results.append((fut, await op(conn), None))
                    except Exception as exc:
                        if conn.broken:
                            raise  # the connection is gone, not this op's fault
                        if not isolated:
                            raise _OpFailed from exc
                        if fut is None:
                            log.error("background write failed: %s", exc)
                        results = [(fut, None, exc)]
                        raise _OpFailed from exc
        except _OpFailed:
            if not isolated:
                raise
        return results
