"""PostgreSQL store: many workers on many hosts share one database.

* Writes of this process are grouped like SQLite's: one writer task drains a queue into a
  transaction on its own connection and commits once (one fsync for many step results).
  A failing write makes the group re-run write by write, so only that one fails.
* Runs are claimed with ``FOR UPDATE SKIP LOCKED``: workers never wait on each other.
* Writes for a run lock its row (``FOR SHARE`` to check the lease, ``FOR UPDATE`` where
  a wake-up could race), so fencing and wake-ups are exact under concurrency.
* Commits that make work runnable ``NOTIFY`` a channel that idle workers ``LISTEN`` on,
  so they wake within milliseconds instead of a poll interval.
* Reads use a small connection pool.

URL: ``postgresql://user@host:5432/db``; add ``?schema=name`` to keep Legato's tables in
their own schema (created if missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from ...errors import RunNotFound, StoreError
from ...records import (
    BlueprintRecord,
    ClaimedRun,
    EventRecord,
    JournalEntry,
    NewRun,
    Pause,
    PauseScope,
    QueueLimits,
    RunControl,
    RunRecord,
    RunStatus,
    SignalRecord,
    Suspension,
    Wakeup,
    WorkerRecord,
)
from ..base import Lease
from ..claiming import (
    Candidate,
    QueueLoad,
    choose,
    loads_from_rows,
    rate_windows,
    scan_size,
)
from ..rows import (
    blueprint_from_row,
    child_entry_status,
    child_id_taken,
    entry_from_row,
    event_from_row,
    latest_blueprint,
    new_run_params,
    pause_from_row,
    published_unchanged,
    queue_from_row,
    queue_params,
    report_write_failure,
    run_from_row,
    signal_from_row,
    sorted_blueprints,
    wakeups_of,
    worker_from_row,
)
from .schema import migrate
from .statements import (
    Q,
    fetch_one,
    fetch_row,
    holds,
    lease_params,
    record_op,
    upsert,
)
from .writer import Conn, GroupWriter, Op

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_READ_ATTEMPTS = 3


def parse_postgres_url(url: str) -> tuple[str, str]:
    """Split ``?schema=`` off a PostgreSQL URL: (conninfo for psycopg, schema)."""
    parsed = urlparse(url)
    query = dict(parse_qsl(parsed.query))
    schema = query.pop("schema", "public")
    if not _SCHEMA_NAME.match(schema):
        raise StoreError(f"bad schema name {schema!r} in {url!r}: use letters, digits and _")
    conninfo = urlunparse(parsed._replace(scheme="postgresql", query=urlencode(query)))
    return conninfo, schema


_RUN_PREFIX = "run:"
"""NOTIFY payloads that name a run something arrived for (others mean "look for work")."""


class PostgresStore:
    """The multi-host store. See the module docstring."""

    def __init__(self, url: str, pool_size: int = 4) -> None:
        self.url = url
        self._conninfo, self.schema = parse_postgres_url(url)
        self._channel = f"legato_{self.schema}"
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool | None = None
        self._writer: GroupWriter | None = None
        self._listener: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], None]] = []
        self._run_listeners: list[Callable[[str], None]] = []
        self._changed = True
        self._listening = False

    # -- lifecycle -----------------------------------------------------------------------
    async def _connect(self, autocommit: bool = False) -> Conn:
        try:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=autocommit,
                row_factory=dict_row,
                options=f"-c search_path={self.schema}",
                connect_timeout=10,
            )
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self._safe_url()}: {exc}") from exc
        return conn

    def _safe_url(self) -> str:
        parsed = urlparse(self.url)
        if parsed.password:
            parsed = parsed._replace(netloc=parsed.netloc.replace(parsed.password, "***"))
        return urlunparse(parsed)

    async def open(self) -> None:
        """Connect, after checking that the schema is current (``legato db upgrade``).

        Unlike SQLite, PostgreSQL schemas are not changed implicitly: many workers on many
        hosts share the database, so upgrading it is an explicit, one-time operator step.
        """
        await self._migrate(apply=False)
        self._pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            kwargs={
                "autocommit": True,
                "row_factory": dict_row,
                "options": f"-c search_path={self.schema}",
            },
            open=False,
        )
        await self._pool.open()
        self._writer = GroupWriter(self._connect)
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
            raise StoreError(f"cannot use {self._safe_url()}: {exc}") from exc
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

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _notify_local(self) -> None:
        for callback in self._listeners:
            callback()

    def add_run_listener(self, callback: Callable[[str], None]) -> None:
        self._run_listeners.append(callback)

    def _notify_run_local(self, run_id: str) -> None:
        for callback in self._run_listeners:
            callback(run_id)

    async def _notify_run(self, conn: Conn, run_id: str) -> None:
        """Tell every process that something arrived for ``run_id`` (at commit)."""
        payload = {"channel": self._channel, "payload": _RUN_PREFIX + run_id}
        await conn.execute(Q["notify_run"], payload)

    async def resident_wakeups(
        self,
        run_ids: Sequence[str],
        signal_runs: Sequence[str],
        child_waits: Sequence[tuple[str, str]],
    ) -> list[Wakeup]:
        rows = await self._read(Q["resident_cancels"], {"run_ids": list(run_ids)})
        cancels = {r["run_id"] for r in rows}
        signals: dict[str, set[str]] = {}
        if signal_runs:
            for r in await self._read(Q["resident_signals"], {"run_ids": list(signal_runs)}):
                signals.setdefault(r["run_id"], set()).add(r["name"])
        children: dict[str, list[JournalEntry]] = {}
        if child_waits:
            params = {"runs": [r for r, _ in child_waits], "seqs": [s for _, s in child_waits]}
            for r in await self._read(Q["resident_children"], params):
                entry = entry_from_row(r)
                children.setdefault(entry.run_id, []).append(entry)
        return wakeups_of(run_ids, cancels, signals, children)

    async def _listen_loop(self) -> None:
        """LISTEN for other processes' commits; reconnect if the connection drops."""
        delay = 0.1
        while True:
            try:
                conn = await self._connect(autocommit=True)
                try:
                    await conn.execute(f'LISTEN "{self._channel}"')
                    self._listening = True
                    self._changed = True  # anything may have happened while deaf
                    self._notify_local()
                    delay = 0.1
                    async for note in conn.notifies():
                        if note.payload.startswith(_RUN_PREFIX):
                            self._notify_run_local(note.payload[len(_RUN_PREFIX) :])
                            continue
                        self._changed = True
                        self._notify_local()
                finally:
                    self._listening = False
                    with contextlib.suppress(Exception):
                        await conn.close()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("PostgreSQL listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- the writer ----------------------------------------------------------------------
    def _submit(self, op: Op) -> asyncio.Future[Any]:
        if self._writer is None:
            raise StoreError("the store is not open (call open() first)")
        return self._writer.submit(op)

    async def _write(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        result: T = await self._submit(op)
        return result

    async def _read(self, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._pool is None:
            raise StoreError("the store is not open (call open() first)")
        # A read changes nothing, so a pooled connection that a server restart broke is
        # simply retried on a fresh one before the caller hears of it.
        for attempt in range(_READ_ATTEMPTS):
            try:
                async with (
                    self._pool.connection() as conn,
                    conn.cursor(row_factory=dict_row) as cur,
                ):
                    await cur.execute(sql, params)
                    return await cur.fetchall()
            except psycopg.OperationalError as exc:
                if attempt + 1 == _READ_ATTEMPTS:
                    raise StoreError(f"database unreachable: {exc}") from exc
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _notify(self, conn: Conn) -> None:
        """Tell every listening process (delivered when the transaction commits)."""
        await conn.execute(f'NOTIFY "{self._channel}"')

    @property
    def stats(self) -> dict[str, int]:
        """Commits and operations so far (for benchmarks)."""
        w = self._writer
        return {"commits": w.commits if w else 0, "ops": w.ops if w else 0}

    # -- runs, for clients ---------------------------------------------------------------
    async def create_run(self, new: NewRun, now: float) -> tuple[RunRecord, bool]:
        async def op(conn: Conn) -> tuple[RunRecord, bool]:
            cur = await conn.execute(Q["insert_run"], new_run_params(new, now))
            created = cur.rowcount == 1
            if created:
                await self._notify(conn)
            row = await fetch_row(conn, "get_run", {"run_id": new.run_id})
            return run_from_row(row), created

        record, created = await self._write(op)
        if created:
            self._notify_local()
        return record, created

    async def get_run(self, run_id: str) -> RunRecord | None:
        rows = await self._read(Q["get_run"], {"run_id": run_id})
        return run_from_row(rows[0]) if rows else None

    async def list_runs(
        self,
        status: RunStatus | None = None,
        workflow: str | None = None,
        limit: int = 100,
        queue: str | None = None,
    ) -> list[RunRecord]:
        params = {
            "status": status.value if status else None,
            "workflow": workflow,
            "limit": limit,
            "queue": queue,
        }
        return [run_from_row(r) for r in await self._read(Q["list_runs"], params)]

    async def get_journal(self, run_id: str) -> list[JournalEntry]:
        return [entry_from_row(r) for r in await self._read(Q["get_journal"], {"run_id": run_id})]

    async def send_signal(self, run_id: str, name: str, payload: str | None, now: float) -> None:
        async def op(conn: Conn) -> bool:
            row = await fetch_one(conn, "lock_run", {"run_id": run_id})
            if row is None:
                raise RunNotFound(run_id)
            if RunStatus(row["status"]).is_terminal:
                raise StoreError(
                    f"run {run_id!r} has ended ({row['status']}); it can take no more signals"
                )
            params = {"run_id": run_id, "name": name, "payload": payload, "now": now}
            await conn.execute(Q["insert_signal"], params)
            cur = await conn.execute(Q["wake_for_signal"], params)
            if cur.rowcount:
                await self._notify(conn)
            else:  # the run may be in a worker's memory, waiting
                await self._notify_run(conn, run_id)
            return cur.rowcount > 0

        if await self._write(op):
            self._notify_local()

    async def request_cancel(self, run_id: str, now: float) -> RunRecord:
        async def op(conn: Conn) -> RunRecord:
            await conn.execute(Q["request_cancel"], {"run_id": run_id, "now": now})
            row = await fetch_one(conn, "get_run", {"run_id": run_id})
            if row is None:
                raise RunNotFound(run_id)
            await self._notify(conn)
            await self._notify_run(conn, run_id)
            return run_from_row(row)

        record = await self._write(op)
        self._notify_local()
        return record

    async def set_paused(self, scope: PauseScope, name: str, paused: bool, now: float) -> None:
        async def op(conn: Conn) -> None:
            if scope is PauseScope.RUN:
                params: dict[str, Any] = {"run_id": name, "paused": paused, "now": now}
                cur = await conn.execute(Q["set_run_paused"], params)
                if cur.rowcount == 0:
                    raise RunNotFound(name)
            else:
                params = {"scope": scope.value, "name": name, "now": now}
                await conn.execute(Q["insert_pause" if paused else "delete_pause"], params)
            if not paused:
                await self._notify(conn)

        await self._write(op)
        if not paused:
            self._notify_local()

    async def list_pauses(self) -> list[Pause]:
        return [pause_from_row(r) for r in await self._read(Q["list_pauses"], {})]

    async def redrive_run(
        self, run_id: str, status: RunStatus, drop_seqs: Sequence[str], now: float
    ) -> RunRecord:
        async def op(conn: Conn) -> RunRecord:
            params = {"run_id": run_id, "status": status.value, "now": now}
            cur = await conn.execute(Q["redrive_run"], params)
            if cur.rowcount == 0:
                if await fetch_one(conn, "get_run", {"run_id": run_id}) is None:
                    raise RunNotFound(run_id)
                raise StoreError(
                    f"run {run_id!r} is no longer {status.value}: it changed meanwhile; "
                    "look at it again (legato runs show) before retrying"
                )
            for seq in drop_seqs:
                await conn.execute(Q["delete_entry"], {"run_id": run_id, "seq": seq})
                await conn.execute(Q["unconsume_signal"], {"run_id": run_id, "seq": seq})
            await self._notify(conn)
            return run_from_row(await fetch_row(conn, "get_run", {"run_id": run_id}))

        record = await self._write(op)
        self._notify_local()
        return record

    # -- worker side ---------------------------------------------------------------------
    async def claim_runs(
        self,
        owner: str,
        limit: int,
        now: float,
        lease_now: float,
        lease_seconds: float,
        workflows: Sequence[str],
        queues: Sequence[str] = ("default",),
    ) -> list[ClaimedRun]:
        self._changed = False  # what happens from here on counts as a change

        async def op(conn: Conn) -> list[ClaimedRun]:
            cur = await conn.execute(Q["lock_queue_limits"], {"queues": list(queues)})
            limits = {q.name: q for q in map(queue_from_row, await cur.fetchall())}
            params = {
                "now": now,
                "lease_now": lease_now,
                "scan": scan_size(limit, limits),
                "workflows": list(workflows),
                "queues": list(queues),
            }
            candidates: list[Candidate] = []
            for name in ("candidates_expired", "candidates_due", "candidates_pending"):
                cur = await conn.execute(Q[name], params)
                candidates.extend(
                    Candidate(
                        r["run_id"], r["queue"], r["concurrency_key"], r["started_at"] is None
                    )
                    for r in await cur.fetchall()
                )
            loads = await self._loads(conn, limits, now, lease_now) if limits else {}
            ids = choose(candidates, limit, limits, loads)
            if not ids:
                return []
            cur = await conn.execute(
                Q["claim_chosen"],
                {
                    "owner": owner,
                    "now": now,
                    "lease_until": lease_now + lease_seconds,
                    "ids": ids,
                },
            )
            runs = [run_from_row(r) for r in await cur.fetchall()]
            journals: dict[str, dict[str, JournalEntry]] = {i: {} for i in ids}
            cur = await conn.execute(Q["claimed_journals"], {"ids": ids})
            for row in await cur.fetchall():
                entry = entry_from_row(row)
                journals[entry.run_id][entry.seq] = entry
            signals: dict[str, list[SignalRecord]] = {i: [] for i in ids}
            cur = await conn.execute(Q["claimed_signals"], {"ids": ids})
            for row in await cur.fetchall():
                signal = signal_from_row(row)
                signals[signal.run_id].append(signal)
            return [ClaimedRun(r, journals[r.run_id], signals[r.run_id]) for r in runs]

        return await self._write(op)

    @staticmethod
    async def _loads(
        conn: Conn, limits: dict[str, QueueLimits], now: float, lease_now: float
    ) -> dict[str, QueueLoad]:
        params = {"queues": list(limits), "lease_now": lease_now}
        cur = await conn.execute(Q["queue_running"], params)
        loads = loads_from_rows(limits, await cur.fetchall())
        for name, since in rate_windows(limits, now).items():
            row = await fetch_row(conn, "queue_starts", {"queue": name, "since": since})
            loads[name].recent_starts = row["n"]
        return loads

    async def set_queue(self, limits: QueueLimits) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(
                Q["upsert_queue"],
                queue_params(limits),
            )
            await self._notify(conn)

        await self._write(op)
        self._notify_local()

    async def list_queues(self) -> list[QueueLimits]:
        return [queue_from_row(r) for r in await self._read(Q["list_queues"], {})]

    async def record(self, lease: Lease, entries: Sequence[JournalEntry]) -> bool:
        return bool(await self._write(record_op(lease, entries)))

    def record_soon(self, lease: Lease, entries: Sequence[JournalEntry]) -> asyncio.Future[bool]:
        return self._submit(record_op(lease, entries))

    def record_nowait(
        self,
        lease: Lease,
        entries: Sequence[JournalEntry],
        on_failure: Callable[[BaseException | None], None],
    ) -> None:
        self._submit(record_op(lease, entries)).add_done_callback(report_write_failure(on_failure))

    async def take_signal(
        self,
        lease: Lease,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> tuple[bool, SignalRecord | None]:
        async def op(conn: Conn) -> tuple[bool, SignalRecord | None]:
            if not await holds(conn, lease):
                return False, None
            row = await fetch_one(
                conn, "oldest_signal", {"run_id": lease.run_id, "names": list(names)}
            )
            signal = signal_from_row(row) if row else None
            if signal is not None:
                await conn.execute(
                    Q["consume_signal"],
                    {"seq": waiting.seq, "signal_id": signal.signal_id},
                )
                await upsert(conn, lease, on_signal(signal))
            else:
                await upsert(conn, lease, waiting)
            return True, signal

        return await self._write(op)

    def consume_signal_nowait(
        self,
        lease: Lease,
        signal: SignalRecord,
        entry: JournalEntry,
        on_failure: Callable[[BaseException | None], None],
    ) -> None:
        async def op(conn: Conn) -> bool:
            if not await holds(conn, lease):
                return False
            await conn.execute(
                Q["consume_signal"], {"seq": entry.seq, "signal_id": signal.signal_id}
            )
            await upsert(conn, lease, entry)
            return True

        self._submit(op).add_done_callback(report_write_failure(on_failure))

    async def start_child(
        self, lease: Lease, entry: JournalEntry, child: NewRun, now: float
    ) -> JournalEntry | None:
        async def op(conn: Conn) -> JournalEntry | None:
            if not await holds(conn, lease):
                return None
            cur = await conn.execute(Q["insert_run"], new_run_params(child, now))
            if cur.rowcount:
                await self._notify(conn)
            existing = run_from_row(await fetch_row(conn, "get_run", {"run_id": child.run_id}))
            if (existing.parent_run_id, existing.parent_seq) != (lease.run_id, entry.seq):
                taken = child_id_taken(entry, child.run_id, now)
                await upsert(conn, lease, taken)
                return taken
            await upsert(conn, lease, entry)
            if existing.status.is_terminal:  # finished before this parent wrote its entry
                await conn.execute(
                    Q["resolve_child_entry"],
                    {
                        "status": child_entry_status(existing.status),
                        "output": existing.output,
                        "error": existing.error,
                        "now": now,
                        "parent_run_id": lease.run_id,
                        "parent_seq": entry.seq,
                        "child_run_id": child.run_id,
                    },
                )
            row = await fetch_row(conn, "get_entry", {"run_id": lease.run_id, "seq": entry.seq})
            return entry_from_row(row)

        result = await self._write(op)
        self._notify_local()
        return result

    async def suspend_run(self, lease: Lease, suspension: Suspension, now: float) -> bool:
        async def op(conn: Conn) -> tuple[bool, bool]:
            # Lock the row first: a signal or a finishing child locks it too, so either it
            # commits before this check (and is seen) or after the suspension (and wakes it).
            own = await fetch_one(conn, "lock_own_run", lease_params(lease))
            if own is None:
                return False, False
            met = bool(own["cancel_requested"]) and not suspension.cancel_delivered
            if not met and suspension.signals:
                params = {"run_id": lease.run_id, "names": list(suspension.signals)}
                met = await fetch_one(conn, "signal_waiting", params) is not None
            if not met and suspension.child_seqs:
                params = {"run_id": lease.run_id, "seqs": list(suspension.child_seqs)}
                met = await fetch_one(conn, "child_done", params) is not None
            await conn.execute(
                Q["suspend_run"],
                {
                    "status": "pending" if met else "waiting",
                    "wake_at": suspension.wake_at,
                    "wait_signals": json.dumps(list(suspension.signals))
                    if suspension.signals
                    else None,
                    "now": now,
                    **lease_params(lease),
                },
            )
            if met or suspension.wake_at is not None:
                await self._notify(conn)  # idle workers recompute their next timer
            return True, met

        held, met = await self._write(op)
        if met:
            self._notify_local()
        return held

    async def finish_run(
        self,
        lease: Lease,
        status: RunStatus,
        output: str | None,
        error: str | None,
        now: float,
    ) -> bool:
        async def op(conn: Conn) -> tuple[bool, bool]:
            row = await fetch_one(
                conn,
                "finish_run",
                {"status": status.value, "output": output, "error": error, "now": now}
                | lease_params(lease),
            )
            if row is None:
                return False, False
            await self._notify(conn)  # a queue slot is free: limited queues may move on
            woke = False
            if row["parent_run_id"] and status.is_terminal:
                parent = {"run_id": row["parent_run_id"]}
                await fetch_one(conn, "lock_run", parent)  # see suspend_run
                await conn.execute(
                    Q["resolve_child_entry"],
                    {
                        "status": child_entry_status(status),
                        "output": output,
                        "error": error,
                        "now": now,
                        "parent_run_id": row["parent_run_id"],
                        "parent_seq": row["parent_seq"],
                        "child_run_id": lease.run_id,
                    },
                )
                cur = await conn.execute(Q["wake_run"], parent | {"now": now})
                woke = cur.rowcount > 0
                if not woke:  # the parent may be in a worker's memory, waiting
                    await self._notify_run(conn, row["parent_run_id"])
            return True, woke

        held, woke = await self._write(op)
        if woke:
            self._notify_local()
        return held

    async def cancel_children(self, run_id: str, now: float) -> int:
        async def op(conn: Conn) -> int:
            cur = await conn.execute(Q["cancel_children"], {"run_id": run_id, "now": now})
            if cur.rowcount:
                await self._notify(conn)
            return cur.rowcount

        count: int = await self._write(op)
        if count:
            self._notify_local()
        return count

    async def release_run(self, lease: Lease, now: float) -> bool:
        async def op(conn: Conn) -> bool:
            cur = await conn.execute(Q["release_run"], {"now": now} | lease_params(lease))
            if cur.rowcount:
                await self._notify(conn)
            return cur.rowcount == 1

        return await self._write(op)

    async def heartbeat(
        self, worker: WorkerRecord, lease_until: float, run_ids: Sequence[str]
    ) -> dict[str, RunControl]:
        async def op(conn: Conn) -> dict[str, RunControl]:
            await conn.execute(
                Q["upsert_worker"],
                {
                    "worker_id": worker.worker_id,
                    "host": worker.host,
                    "pid": worker.pid,
                    "started_at": worker.started_at,
                    "heartbeat_at": worker.heartbeat_at,
                },
            )
            await conn.execute(
                Q["renew_leases"],
                {"owner": worker.worker_id, "lease_until": lease_until, "ids": list(run_ids)},
            )
            cur = await conn.execute(Q["owned_runs"], {"owner": worker.worker_id})
            return {
                r["run_id"]: RunControl(
                    r["lease_epoch"], bool(r["cancel_requested"]), bool(r["paused"])
                )
                for r in await cur.fetchall()
            }

        return await self._write(op)

    async def deregister_worker(self, worker_id: str) -> None:
        async def op(conn: Conn) -> None:
            await conn.execute(Q["delete_worker"], {"worker_id": worker_id})

        await self._write(op)

    async def list_workers(self) -> list[WorkerRecord]:
        return [worker_from_row(r) for r in await self._read(Q["list_workers"], {})]

    async def expire_leases_of(self, worker_ids: Sequence[str]) -> int:
        async def op(conn: Conn) -> int:
            total = 0
            for worker_id in worker_ids:
                cur = await conn.execute(Q["expire_leases"], {"owner": worker_id})
                total += cur.rowcount
                await conn.execute(Q["delete_worker"], {"worker_id": worker_id})
            if total:
                await self._notify(conn)
            return total

        count = await self._write(op)
        if count:
            self._notify_local()
        return count

    async def next_wake_at(self) -> tuple[float | None, float | None]:
        (row,) = await self._read(Q["next_wake"], {})
        return row["timer"], row["lease"]

    async def data_changed(self) -> bool:
        # Other processes' commits arrive as notifications; while the listener is
        # reconnecting, say "changed" so that idle workers fall back to polling.
        changed = self._changed or not self._listening
        self._changed = False
        return changed

    # -- blueprints ----------------------------------------------------------------------
    async def publish_blueprint(
        self, namespace: str, name: str, version: str, digest: str, source: str, now: float
    ) -> BlueprintRecord:
        key = {"namespace": namespace, "name": name, "version": version}

        async def op(conn: Conn) -> BlueprintRecord:
            params = key | {"digest": digest, "source": source, "now": now}
            await conn.execute(Q["insert_blueprint"], params)
            stored = blueprint_from_row(await fetch_row(conn, "get_blueprint", key))
            return published_unchanged(stored, digest)

        return await self._write(op)

    async def get_blueprint(
        self, namespace: str, name: str, version: str | None
    ) -> BlueprintRecord | None:
        key = {"namespace": namespace, "name": name, "version": version}
        if version is None:
            return latest_blueprint(await self._read(Q["blueprint_versions"], key))
        rows = await self._read(Q["get_blueprint"], key)
        return blueprint_from_row(rows[0]) if rows else None

    async def list_blueprints(self, namespace: str | None = None) -> list[BlueprintRecord]:
        return sorted_blueprints(await self._read(Q["list_blueprints"], {"namespace": namespace}))

    # -- events --------------------------------------------------------------------------
    async def append_event(self, envelope: str, type: str, source: str, now: float) -> int:
        params = {"envelope": envelope, "type": type, "source": source, "now": now}

        async def op(conn: Conn) -> int:
            await conn.execute(Q["lock_events"])
            row = await fetch_row(conn, "insert_event", params)
            await self._notify(conn)  # workers holding listening runs look for it at once
            return int(row["id"])

        event_id = await self._write(op)
        self._notify_local()
        return event_id

    async def read_events(self, after_id: int, since: float, limit: int = 100) -> list[EventRecord]:
        params = {"after_id": after_id, "since": since, "limit": limit}
        return [event_from_row(r) for r in await self._read(Q["read_events"], params)]

    async def set_listening(self, run_id: str, listening: bool, now: float) -> None:
        async def op(conn: Conn) -> None:
            if listening:
                await conn.execute(Q["insert_listener"], {"run_id": run_id, "now": now})
            else:
                await conn.execute(Q["delete_listener"], {"run_id": run_id})

        await self._write(op)

    async def listening_runs(self) -> list[str]:
        return [r["run_id"] for r in await self._read(Q["listening_runs"], {})]
