"""SQLite store: WAL mode, one writer thread (see connection.py), commits grouped.

Reads run on a second connection of their own (WAL readers never block the writer).
Every SQL statement is in queries.sql; the store's logic is shared (legato.store.core):
this module only connects, migrates and executes named statements.

Every store of one process on one database shares one writer thread and one read
connection (the first to open sets ``synchronous``), so their writes group into the same
commits and ``PRAGMA data_version`` tells other processes' commits apart.

``?mode=rw`` opens only a database that exists (:class:`legato.errors.NotFound` names the
missing file; read-only tools use it so that a mistyped path creates nothing); the default
``mode=rwc`` creates the file.

``sqlite:///:memory:NAME`` is an in-memory database shared by every store of this process
that opens the same URL (see :mod:`legato.testing`): the same SQL, nothing on disk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse
from urllib.request import pathname2url

from ...errors import ConfigurationError, Conflict, NotFound, Unavailable
from ..core import Store
from ..ops import Sql, drive, one
from ..plumbing import Hub, OpCall
from ..sqlfiles import pending_migrations
from .connection import Conn, Writer, begin_immediate, retry_busy
from .queries import Q, migrations

log = logging.getLogger(__name__)

MEMORY = ":memory:"

_hubs: dict[str, Hub] = {}
_keepers: dict[str, sqlite3.Connection] = {}
_engines: dict[str, _Engine] = {}
_shared_lock = threading.RLock()


class _Engine:
    """The writer thread and read connection of one database, shared by every store of
    this process that opens it.

    Sharing them means one grouped commit for a worker's and a client's writes together,
    and it makes ``PRAGMA data_version`` on the writer's connection change only for other
    *processes'* commits: this process's all go through this one connection.
    """

    def __init__(self, writer: Writer, reader: Conn, synchronous: str) -> None:
        self.writer = writer
        self.reader = reader
        self.reader_lock = threading.Lock()
        self.synchronous = synchronous
        self.users = 0


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:NAME``."""
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        raise ConfigurationError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/file.db)")
    path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if not path:
        raise ConfigurationError(f"SQLite URL {url!r} names no file: use sqlite:///legato.db")
    if parsed.fragment:
        raise ConfigurationError(
            f"SQLite URL {url!r} has a '#' part, which names nothing: remove it"
        )
    options = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
    unknown = sorted(set(options) - _SQLITE_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(unknown)} in SQLite URL {url!r}: "
            f"a SQLite URL takes {' and '.join(sorted(_SQLITE_OPTIONS))}"
        )
    return path, options


_SQLITE_OPTIONS = frozenset({"mode", "synchronous"})


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only (0600, whatever the umask).

    A workflow database holds inputs, results and errors, which may be personal data.
    SQLite gives its ``-wal`` and ``-shm`` files the database file's permissions, so
    they are private too. A file that exists already keeps the mode it has.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # let SQLite report why it cannot open it
    os.close(fd)


def memory_name(path: str) -> str | None:
    """The shared in-memory database's name for ``:memory:NAME``, else None."""
    if not path.startswith(MEMORY):
        return None
    name = path[len(MEMORY) :]
    if not name:
        raise ConfigurationError(
            "sqlite:///:memory: cannot be shared between the worker and clients; "
            "use a file (sqlite:///legato.db) or legato.testing.memory_url() for tests"
        )
    return name


def _hub_for(key: str) -> Hub:
    with _shared_lock:
        return _hubs.setdefault(key, Hub())


def forget_memory(name: str) -> None:
    """Drop the shared in-memory database ``name`` (its data is gone)."""
    with _shared_lock:
        keeper = _keepers.pop(name, None)
        _hubs.pop(MEMORY + name, None)
    if keeper is not None:
        keeper.close()


_LIST_PARAM = re.compile(r"json_each\(:(\w+)\)")
_LISTS = {name: frozenset(_LIST_PARAM.findall(text)) for name, text in Q.items()}
"""Per statement, the parameters it reads as JSON arrays (json_each): lists become JSON."""


def execute(conn: Conn, sql: Sql) -> Any:
    """Run one named statement; the lists it reads with json_each go as JSON text."""
    params = sql.params
    lists = _LISTS[sql.name]
    if lists:
        params = {k: json.dumps(list(v)) if k in lists else v for k, v in params.items()}
    try:
        cur = retry_busy(lambda: conn.execute(Q[sql.name], params))
        try:
            if sql.fetch == "one":
                return cur.fetchone()
            if sql.fetch == "all":
                return cur.fetchall()
            return cur.rowcount
        finally:
            cur.close()
    except sqlite3.IntegrityError as exc:
        raise Conflict(f"the database refused {sql.name}: {exc}") from exc
    except sqlite3.Error as exc:
        raise Unavailable(f"SQLite failed in {sql.name}: {exc}") from exc


class SQLiteStore(Store):
    """The default store: one SQLite file in WAL mode. See the module docstring."""

    def __init__(self, url: str) -> None:
        path, options = parse_sqlite_url(url)
        self._memory = memory_name(path)
        key = MEMORY + self._memory if self._memory else str(Path(path).resolve())
        super().__init__(url, _hub_for(key))
        self.path = path
        self._synchronous = options.get("synchronous", "FULL").upper()
        if self._synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ConfigurationError(
                f"unknown synchronous={self._synchronous!r} in {url!r}: use NORMAL or FULL"
            )
        self._mode = options.get("mode", "rwc")
        if self._mode not in ("rw", "rwc"):
            raise ConfigurationError(
                f"unknown mode={self._mode!r} in {url!r}: use rw (the file must exist) or rwc"
            )
        self._key = key
        self._engine: _Engine | None = None
        self._open_lock: asyncio.Lock | None = None
        self._data_version: int | None = None
        self.reads = 0

    # -- lifecycle -----------------------------------------------------------------------
    def _connect(self) -> Conn:
        if self._memory is not None:
            return self._connect_memory()
        parent = Path(self.path).resolve().parent
        if not parent.is_dir():
            raise ConfigurationError(
                f"cannot open {self.url}: folder {parent} does not exist; create it first"
            )
        target, uri = self.path, False
        if self._mode == "rwc":
            _create_private(Path(self.path))
        if self._mode == "rw":  # SQLite itself refuses to create the file
            resolved = Path(self.path).resolve()
            if not resolved.is_file():
                raise NotFound(f"no database at {resolved}")
            target, uri = f"file:{pathname2url(str(resolved))}?mode=rw", True
        try:
            conn = sqlite3.connect(
                target,
                uri=uri,
                isolation_level=None,
                check_same_thread=False,
                timeout=5.0,
                factory=Conn,
            )
            conn.row_factory = sqlite3.Row
            retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA busy_timeout=5000")
        except sqlite3.Error as exc:
            raise Unavailable(f"cannot open {self.url}: {exc}") from exc
        return conn

    def _connect_memory(self) -> Conn:
        uri = f"file:legato-{self._memory}?mode=memory&cache=shared"
        with _shared_lock:
            if self._memory not in _keepers:  # the database lives as long as this connection
                _keepers[str(self._memory)] = sqlite3.connect(
                    uri, uri=True, check_same_thread=False
                )
        conn = sqlite3.connect(
            uri, uri=True, isolation_level=None, check_same_thread=False, factory=Conn
        )
        conn.row_factory = sqlite3.Row
        return conn

    async def open(self) -> None:
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:  # two callers opening at once share one opening
            if self._engine is None:
                await self._open()

    async def _open(self) -> None:
        await self.upgrade()
        with _shared_lock:
            engine = _engines.get(self._key)
            if engine is not None and engine.synchronous != self._synchronous:
                raise ConfigurationError(
                    f"{self.url} asks for synchronous={self._synchronous}, but this process "
                    f"already has the database open with synchronous={engine.synchronous}: "
                    "open it with the same setting everywhere in one process"
                )
            if engine is None or not engine.writer.is_alive():  # none yet, or it died
                reader = self._connect()
                writer = Writer(self._connect, execute, self._hub.deliver)
                writer.start()
                engine = _engines[self._key] = _Engine(writer, reader, self._synchronous)
            engine.users += 1
        self._engine = engine
        try:
            self._data_version = await self.change_token()  # what "changed since" means
        except BaseException:
            await self.close()
            raise

    async def upgrade(self) -> list[int]:
        """Apply pending migrations (open() does this for SQLite: one machine, no operator)."""
        return await asyncio.to_thread(self._migrate)

    def _migrate(self) -> list[int]:
        applied: list[int] = []
        conn = self._connect()
        try:
            begin_immediate(conn)
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
                )
                done = {r[0] for r in conn.all("SELECT version FROM schema_migrations")}
                for version, statements in pending_migrations(migrations(), done, self.url):
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time())
                    )
                    log.info("applied schema migration %d to %s", version, self.url)
                    applied.append(version)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise Unavailable(f"cannot use {self.url}: {exc}") from exc
        finally:
            conn.close()
        return applied

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        with _shared_lock:
            engine.users -= 1
            last = engine.users == 0
            if last and _engines.get(self._key) is engine:
                del _engines[self._key]
        if last:  # the writer finishes what is queued first
            await asyncio.to_thread(engine.writer.stop)
            engine.reader.close()

    # -- plumbing ------------------------------------------------------------------------
    def _submit(self, call: OpCall) -> asyncio.Future[Any]:
        if self._engine is None:
            raise Unavailable("the store is not open (call open() first)")
        return self._engine.writer.submit(call)

    async def _read(self, call: OpCall) -> Any:
        engine = self._engine
        if engine is None:
            raise Unavailable("the store is not open (call open() first)")

        def run() -> Any:
            with engine.reader_lock:
                self.reads += 1
                return drive(call(), lambda sql: execute(engine.reader, sql), [])

        return await asyncio.to_thread(run)

    @property
    def stats(self) -> dict[str, int]:
        """Commits and writes of this process on this database (its stores share one
        writer), and this store's own reads."""
        done = self._engine.writer.counter if self._engine else None
        return {
            "commits": done.commits if done else 0,
            "ops": done.ops if done else 0,
            "reads": self.reads,
        }

    async def data_changed(self) -> bool:
        """Whether another connection committed since the last call.

        ``PRAGMA data_version`` on the writer's own connection ignores the writer's own
        commits, and every commit of this process goes through that connection: a change
        is exactly "another process did something". It runs outside any transaction
        there, so an idle worker asking this takes no write lock. An in-memory database
        has no other process: its commits all arrive as notices.
        """
        if self._memory is not None or self._engine is None:
            return False
        version = await self.change_token()
        changed = version != self._data_version
        self._data_version = version
        return changed

    async def change_token(self) -> int:
        if self._memory is not None or self._engine is None:
            return 0
        return int(await self._engine.writer.submit(_data_version, peek=True))


def _data_version() -> Any:
    row = yield one("data_version")
    return row["data_version"]
