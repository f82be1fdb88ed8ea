"""PostgreSQL store: many workers on many hosts share one database.

The store's logic is shared (legato.store.core); this module holds what PostgreSQL does
differently:

* Writes of this process are grouped like SQLite's (writer.py): one writer task drains a
  queue into a transaction on its own connection and commits once.
* Runs are claimed with ``FOR UPDATE SKIP LOCKED``: workers never wait on each other.
  Writes for a run lock its row (``FOR SHARE`` to check the lease, ``FOR UPDATE`` where a
  wake-up could race), so fencing and wake-ups are exact under concurrency.
* Each commit's notices (new work, arrivals for runs in memory, status changes) go to
  every process with ``NOTIFY``; a ``LISTEN`` connection hands other processes' notices to
  this process's listeners, so idle workers and waiting clients wake within milliseconds.
* Reads use a small connection pool.

URL: ``postgresql://user@host:5432/db``; add ``?schema=name`` to keep Legato's tables in
their own schema (created if missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ...errors import ConfigurationError, Unavailable
from ...outages import Outage
from .. import safe_url
from ..core import Store
from ..ops import WORK, Notice, NoticeKind, arrived, drive_async
from ..plumbing import Hub, OpCall
from .schema import migrate
from .writer import Conn, GroupWriter, execute, translate

log = logging.getLogger(__name__)

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_READ_ATTEMPTS = 3


def parse_postgres_url(url: str) -> tuple[str, str]:
    """Split ``?schema=`` off a PostgreSQL URL: (conninfo for psycopg, schema)."""
    try:
        parsed = urlparse(url)
    except ValueError as exc:  # "Invalid IPv6 URL"
        raise ConfigurationError(f"{safe_url(url)!r} is not a PostgreSQL URL: {exc}") from exc
    if parsed.netloc.count("@") > 1:
        # libpq splits at the first "@" and would name the rest of the password as the host
        # in its error.
        raise ConfigurationError(
            f"{safe_url(url)!r}: the user or password has an '@'; write it as %40"
        )
    query = dict(parse_qsl(parsed.query))
    schema = query.pop("schema", "public")
    if not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(
            f"bad schema name {schema!r} in {safe_url(url)!r}: use letters, digits and _"
        )
    conninfo = urlunparse(parsed._replace(scheme="postgresql", query=urlencode(query)))
    return conninfo, schema


def decode_notice(payload: str) -> Notice:
    """A ``NOTIFY`` payload as a notice (an empty one or ``run:<id>``: an older Legato)."""
    if not payload:
        return WORK
    if payload.startswith("run:"):
        return arrived(payload[4:])
    return Notice.decode(payload)


class PostgresStore(Store):
    """The multi-host store. See the module docstring."""

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self._listener_outage = Outage(log, "the PostgreSQL listener")
        conninfo, schema = parse_postgres_url(url)
        super().__init__(url, Hub())
        self._conninfo, self.schema = conninfo, schema
        self._channel = f"legato_{self.schema}"
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._writer: GroupWriter | None = None
        self._listener: asyncio.Task[None] | None = None
        self._changed = True
        self._listening = False
        self._heard = 0  # notices from other processes so far (the change token)
        self.reads = 0

    # -- lifecycle -----------------------------------------------------------------------
    async def _connect(self, autocommit: bool = False, role: str = "legato") -> Conn:
        """A connection; ``role`` names it in pg_stat_activity (writer, listener, ...)."""
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=autocommit,
                row_factory=dict_row,
                options=f"-c search_path={self.schema}",
                connect_timeout=10,
                application_name=role,
            )
        except psycopg.Error as exc:
            raise Unavailable(f"cannot connect to {self._safe_url()}: {exc}") from exc
        return conn

    def _safe_url(self) -> str:
        return safe_url(self.url)

    async def open(self) -> None:
        """Connect, after checking that the schema is current (``legato db upgrade``).

        Unlike SQLite, PostgreSQL schemas are not changed implicitly: many workers on many
        hosts share the database, so upgrading it is an explicit, one-time operator step.
        Opening an open store does nothing.
        """
        if self._writer is not None:
            return
        await self._migrate(apply=False)
        self._pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "options": f"-c search_path={self.schema}",
                "application_name": "legato reader",
            },
            open=False,
        )
        try:
            await self._pool.open()
        except psycopg.Error as exc:
            raise Unavailable(f"cannot connect to {self._safe_url()}: {exc}") from exc
        self._writer = GroupWriter(
            lambda: self._connect(role="legato writer"), self._channel, self._hub.deliver
        )
        self._writer.start()
        self._listener = asyncio.create_task(self._listen_loop())

    async def upgrade(self) -> list[int]:
        """Apply pending migrations (safe to run from several hosts at once)."""
        return await self._migrate(apply=True)

    async def _migrate(self, apply: bool) -> list[int]:
        conn = await self._connect(autocommit=False)
        try:
            return await migrate(conn, self.schema, self._safe_url(), apply)
        except psycopg.Error as exc:
            raise Unavailable(f"cannot use {self._safe_url()}: {exc}") from exc
        finally:
            await conn.close()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _listen_loop(self) -> None:
        """LISTEN for other processes' notices; reconnect if the connection drops."""
        delay = 0.1
        while True:
            try:
                conn = await self._connect(autocommit=True, role="legato listener")
                try:
                    await conn.execute(f'LISTEN "{self._channel}"')
                    self._listening = True
                    self._listener_outage.ok()
                    self._changed = True  # anything may have happened while deaf:
                    self._heard += 1  # look for work, and let waiters read their runs
                    self._hub.deliver([WORK, Notice(NoticeKind.STATUS)])
                    delay = 0.1
                    async for note in conn.notifies():
                        writer = self._writer
                        if writer is not None and note.pid == writer.backend_pid:
                            continue  # ours: delivered in this process after the commit
                        self._heard += 1
                        notice = decode_notice(note.payload)
                        if notice.kind is NoticeKind.WORK:
                            self._changed = True
                        self._hub.deliver([notice])
                finally:
                    self._listening = False
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._listener_outage.failed(
                    Unavailable(f"{exc}"), f"reconnecting within {delay:g}-5 s"
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- plumbing ------------------------------------------------------------------------
    def _submit(self, call: OpCall) -> asyncio.Future[Any]:
        if self._writer is None:
            raise Unavailable("the store is not open (call open() first)")
        return self._writer.submit(call)

    async def _read(self, call: OpCall) -> Any:
        if self._pool is None:
            raise Unavailable("the store is not open (call open() first)")
        # A read changes nothing, so a pooled connection that a server restart broke is
        # simply retried on a fresh one before the caller hears of it.
        for attempt in range(_READ_ATTEMPTS):
            try:
                async with self._pool.connection() as conn:
                    self.reads += 1
                    return await drive_async(call(), lambda s: execute(conn, s), [])  # type: ignore[arg-type]
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if attempt + 1 == _READ_ATTEMPTS:
                    raise Unavailable(f"database unreachable: {exc}") from exc
                await asyncio.sleep(0.1 * (attempt + 1))
            except psycopg.Error as exc:
                raise translate(exc, "a read") from exc
            except Unavailable:
                if attempt + 1 == _READ_ATTEMPTS:
                    raise
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def stats(self) -> dict[str, int]:
        w = self._writer
        done = w.counter if w else None
        return {
            "commits": done.commits if done else 0,
            "ops": done.ops if done else 0,
            "reads": self.reads,
        }

    @property
    def changes_are_pushed(self) -> bool:
        return self._listening

    def _claim_starting(self) -> None:
        self._changed = False  # what happens from here on counts as a change

    async def change_token(self) -> int:
        if not self._listening:  # deaf for now: anything may have changed
            self._heard += 1
        return self._heard

    async def data_changed(self) -> bool:
        # Other processes' commits arrive as notifications; while the listener is
        # reconnecting, say "changed" so that idle workers fall back to polling.
        changed = self._changed or not self._listening
        self._changed = False
        return changed
