"""SQLite store: WAL mode, one writer thread (see connection.py), commits grouped.

Reads run on a second connection of their own (WAL readers never block the writer).
Every SQL statement is in queries.sql; this module only orchestrates them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlparse

from ...errors import RunNotFound, SchemaError, StoreError
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
    QueueLoad,
    candidate_from_row,
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
    entry_params,
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
from ..sqlfiles import split_statements
from .connection import Conn, Op, Writer, begin_immediate, retry_busy
from .queries import Q, migrations

log = logging.getLogger(__name__)

T = TypeVar("T")


def parse_sqlite_url(url: str) -> tuple[str, dict[str, str]]:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        raise StoreError(f"not a SQLite URL: {url!r} (expected sqlite:///path/to/file.db)")
    path = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    if not path:
        raise StoreError(f"SQLite URL {url!r} names no file: use sqlite:///legato.db")
    options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    return path, options


class SQLiteStore:
    """The default store: one SQLite file in WAL mode. See the module docstring."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.path, options = parse_sqlite_url(url)
        self._synchronous = options.get("synchronous", "FULL").upper()
        if self._synchronous not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise StoreError(
                f"unknown synchronous={self._synchronous!r} in {url!r}: use NORMAL or FULL"
            )
        self._writer: Writer | None = None
        self._reader: Conn | None = None
        self._reader_lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._run_listeners: list[Callable[[str], None]] = []
        self._data_version: int | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def _connect(self) -> Conn:
        if self.path != ":memory:":
            parent = Path(self.path).resolve().parent
            if not parent.is_dir():
                raise StoreError(
                    f"cannot open {self.url}: folder {parent} does not exist; create it first"
                )
        try:
            conn = sqlite3.connect(
                self.path,
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
            raise StoreError(f"cannot open {self.url}: {exc}") from exc
        return conn

    async def open(self) -> None:
        if self.path == ":memory:":
            raise StoreError(
                "sqlite:///:memory: cannot be shared between the worker and clients; "
                "use a file (sqlite:///legato.db) or legato.testing for tests"
            )
        await self.upgrade()
        self._writer = Writer(self._connect)
        self._writer.start()
        self._reader = self._connect()

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
                known = migrations()
                newest = known[-1][0]
                if done and max(done) > newest:
                    raise SchemaError(
                        f"{self.url} has schema version {max(done)}, newer than this Legato "
                        f"knows ({newest}): upgrade Legato"
                    )
                for version, script in known:
                    if version in done:
                        continue
                    for statement in split_statements(script):
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
            raise StoreError(f"cannot use {self.url}: {exc}") from exc
        finally:
            conn.close()
        return applied

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.queue.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in self._listeners:
            callback()

    def add_run_listener(self, callback: Callable[[str], None]) -> None:
        self._run_listeners.append(callback)

    def _notify_run(self, run_id: str) -> None:
        """Something arrived for ``run_id`` (in this process; other processes learn of it
        through ``data_changed``)."""
        for callback in self._run_listeners:
            callback(run_id)

    async def resident_wakeups(
        self,
        run_ids: Sequence[str],
        signal_runs: Sequence[str],
        child_waits: Sequence[tuple[str, str]],
    ) -> list[Wakeup]:
        def op(conn: Conn) -> list[Wakeup]:
            cancels = {
                r["run_id"]
                for r in conn.all(Q["resident_cancels"], {"run_ids": json.dumps(list(run_ids))})
            }
            signals: dict[str, set[str]] = {}
            if signal_runs:
                rows = conn.all(Q["resident_signals"], {"run_ids": json.dumps(list(signal_runs))})
                for r in rows:
                    signals.setdefault(r["run_id"], set()).add(r["name"])
            children: dict[str, list[JournalEntry]] = {}
            if child_waits:
                pairs = json.dumps([list(p) for p in child_waits])
                for r in conn.all(Q["resident_children"], {"pairs": pairs}):
                    entry = entry_from_row(r)
                    children.setdefault(entry.run_id, []).append(entry)
            return wakeups_of(run_ids, cancels, signals, children)

        return await self._read(op)

    # -- plumbing ------------------------------------------------------------------------
    def _submit(self, op: Op) -> asyncio.Future[Any]:
        if self._writer is None:
            raise StoreError("the store is not open (call open() first)")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._writer.queue.put((op, fut))
        return fut

    async def _write(self, op: Callable[[Conn], T]) -> T:
        result: T = await self._submit(op)
        return result

    async def _read(self, op: Callable[[Conn], T]) -> T:
        reader = self._reader
        if reader is None:
            raise StoreError("the store is not open (call open() first)")

        def run() -> T:
            with self._reader_lock:
                return retry_busy(lambda: op(reader))

        return await asyncio.to_thread(run)

    @property
    def stats(self) -> dict[str, int]:
        """Commits and operations so far (for benchmarks)."""
        w = self._writer
        return {"commits": w.commits if w else 0, "ops": w.ops if w else 0}

    # -- runs, for clients ---------------------------------------------------------------
    async def create_run(self, new: NewRun, now: float) -> tuple[RunRecord, bool]:
        def op(conn: Conn) -> tuple[RunRecord, bool]:
            cur = conn.execute(
                Q["insert_run"],
                new_run_params(new, now),
            )
            row = conn.one(Q["get_run"], {"run_id": new.run_id})
            return run_from_row(row), cur.rowcount == 1

        record, created = await self._write(op)
        if created:
            self._notify()
        return record, created

    async def get_run(self, run_id: str) -> RunRecord | None:
        def op(conn: Conn) -> RunRecord | None:
            row = conn.one(Q["get_run"], {"run_id": run_id})
            return run_from_row(row) if row else None

        return await self._read(op)

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

        def op(conn: Conn) -> list[RunRecord]:
            return [run_from_row(r) for r in conn.all(Q["list_runs"], params)]

        return await self._read(op)

    async def get_journal(self, run_id: str) -> list[JournalEntry]:
        def op(conn: Conn) -> list[JournalEntry]:
            return [entry_from_row(r) for r in conn.all(Q["get_journal"], {"run_id": run_id})]

        return await self._read(op)

    async def send_signal(self, run_id: str, name: str, payload: str | None, now: float) -> None:
        def op(conn: Conn) -> bool:
            row = conn.one(Q["get_run"], {"run_id": run_id})
            if row is None:
                raise RunNotFound(run_id)
            if RunStatus(row["status"]).is_terminal:
                raise StoreError(
                    f"run {run_id!r} has ended ({row['status']}); it can take no more signals"
                )
            conn.execute(
                Q["insert_signal"], {"run_id": run_id, "name": name, "payload": payload, "now": now}
            )
            cur = conn.execute(Q["wake_for_signal"], {"run_id": run_id, "name": name, "now": now})
            return cur.rowcount > 0

        if await self._write(op):
            self._notify()
        self._notify_run(run_id)  # the run may be in a worker's memory, waiting

    async def request_cancel(self, run_id: str, now: float) -> RunRecord:
        def op(conn: Conn) -> RunRecord:
            conn.execute(Q["request_cancel"], {"run_id": run_id, "now": now})
            row = conn.one(Q["get_run"], {"run_id": run_id})
            if row is None:
                raise RunNotFound(run_id)
            return run_from_row(row)

        record = await self._write(op)
        self._notify()
        self._notify_run(run_id)
        return record

    async def set_paused(self, scope: PauseScope, name: str, paused: bool, now: float) -> None:
        def op(conn: Conn) -> None:
            if scope is PauseScope.RUN:
                params = {"run_id": name, "paused": int(paused), "now": now}
                if conn.execute(Q["set_run_paused"], params).rowcount == 0:
                    raise RunNotFound(name)
                return
            params = {"scope": scope.value, "name": name, "now": now}
            conn.execute(Q["insert_pause" if paused else "delete_pause"], params)

        await self._write(op)
        if not paused:
            self._notify()

    async def list_pauses(self) -> list[Pause]:
        def op(conn: Conn) -> list[Pause]:
            return [pause_from_row(r) for r in conn.all(Q["list_pauses"])]

        return await self._read(op)

    async def redrive_run(
        self, run_id: str, status: RunStatus, drop_seqs: Sequence[str], now: float
    ) -> RunRecord:
        def op(conn: Conn) -> RunRecord:
            cur = conn.execute(
                Q["redrive_run"], {"run_id": run_id, "status": status.value, "now": now}
            )
            if cur.rowcount == 0:
                if conn.one(Q["get_run"], {"run_id": run_id}) is None:
                    raise RunNotFound(run_id)
                raise StoreError(
                    f"run {run_id!r} is no longer {status.value}: it changed meanwhile; "
                    "look at it again (legato runs show) before retrying"
                )
            for seq in drop_seqs:
                conn.execute(Q["delete_entry"], {"run_id": run_id, "seq": seq})
                conn.execute(Q["unconsume_signal"], {"run_id": run_id, "seq": seq})
            return run_from_row(conn.one(Q["get_run"], {"run_id": run_id}))

        record = await self._write(op)
        self._notify()
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
        served = json.dumps(list(queues))

        def op(conn: Conn) -> list[ClaimedRun]:
            # Remember what this claim saw, so data_changed() means "since the last claim".
            self._data_version = int(conn.one("PRAGMA data_version")[0])
            limits = {
                q.name: q
                for q in map(queue_from_row, conn.all(Q["queue_limits"], {"queues": served}))
            }
            params = {
                "now": now,
                "lease_now": lease_now,
                "scan": scan_size(limit, limits),
                "workflows": json.dumps(list(workflows)),
                "queues": served,
            }
            candidates = [candidate_from_row(r) for r in conn.all(Q["claim_candidates"], params)]
            loads = self._loads(conn, limits, now, lease_now) if limits else {}
            claimed = []
            for run_id in choose(candidates, limit, limits, loads):
                row = conn.one(
                    Q["claim_run"],
                    {
                        "run_id": run_id,
                        "owner": owner,
                        "lease_until": lease_now + lease_seconds,
                        "now": now,
                    },
                )
                rows = conn.all(Q["claimed_journal"], {"run_id": run_id})
                journal = {e.seq: e for e in map(entry_from_row, rows)}
                signals = [
                    signal_from_row(s)
                    for s in conn.all(Q["unconsumed_signals"], {"run_id": run_id})
                ]
                claimed.append(ClaimedRun(run_from_row(row), journal, signals))
            return claimed

        return await self._write(op)

    @staticmethod
    def _loads(
        conn: Conn, limits: dict[str, QueueLimits], now: float, lease_now: float
    ) -> dict[str, QueueLoad]:
        params = {"queues": json.dumps(list(limits)), "lease_now": lease_now}
        loads = loads_from_rows(limits, conn.all(Q["queue_running"], params))
        for name, since in rate_windows(limits, now).items():
            row = conn.one(Q["queue_starts"], {"queue": name, "since": since})
            loads[name].recent_starts = row["n"]
        return loads

    async def set_queue(self, limits: QueueLimits) -> None:
        def op(conn: Conn) -> None:
            conn.execute(
                Q["upsert_queue"],
                queue_params(limits),
            )

        await self._write(op)
        self._notify()

    async def list_queues(self) -> list[QueueLimits]:
        def op(conn: Conn) -> list[QueueLimits]:
            return [queue_from_row(r) for r in conn.all(Q["list_queues"])]

        return await self._read(op)

    async def record(self, lease: Lease, entries: Sequence[JournalEntry]) -> bool:
        return bool(await self._write(_record_op(lease, entries)))

    def record_soon(self, lease: Lease, entries: Sequence[JournalEntry]) -> asyncio.Future[bool]:
        return self._submit(_record_op(lease, entries))

    def record_nowait(
        self,
        lease: Lease,
        entries: Sequence[JournalEntry],
        on_failure: Callable[[BaseException | None], None],
    ) -> None:
        self._submit(_record_op(lease, entries)).add_done_callback(report_write_failure(on_failure))

    async def take_signal(
        self,
        lease: Lease,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> tuple[bool, SignalRecord | None]:
        def op(conn: Conn) -> tuple[bool, SignalRecord | None]:
            if not _holds(conn, lease):
                return False, None
            row = conn.one(
                Q["oldest_signal"], {"run_id": lease.run_id, "names": json.dumps(list(names))}
            )
            signal = signal_from_row(row) if row else None
            if signal is not None:
                conn.execute(
                    Q["consume_signal"], {"seq": waiting.seq, "signal_id": signal.signal_id}
                )
                conn.execute(Q["upsert_entry"], entry_params(lease, on_signal(signal)))
            else:
                conn.execute(Q["upsert_entry"], entry_params(lease, waiting))
            return True, signal

        return await self._write(op)

    def consume_signal_nowait(
        self,
        lease: Lease,
        signal: SignalRecord,
        entry: JournalEntry,
        on_failure: Callable[[BaseException | None], None],
    ) -> None:
        def op(conn: Conn) -> bool:
            if not _holds(conn, lease):
                return False
            conn.execute(Q["consume_signal"], {"seq": entry.seq, "signal_id": signal.signal_id})
            conn.execute(Q["upsert_entry"], entry_params(lease, entry))
            return True

        self._submit(op).add_done_callback(report_write_failure(on_failure))

    async def start_child(
        self, lease: Lease, entry: JournalEntry, child: NewRun, now: float
    ) -> JournalEntry | None:
        def op(conn: Conn) -> JournalEntry | None:
            if not _holds(conn, lease):
                return None
            conn.execute(
                Q["insert_run"],
                new_run_params(child, now),
            )
            existing = run_from_row(conn.one(Q["get_run"], {"run_id": child.run_id}))
            if (existing.parent_run_id, existing.parent_seq) != (lease.run_id, entry.seq):
                taken = child_id_taken(entry, child.run_id, now)
                conn.execute(Q["upsert_entry"], entry_params(lease, taken))
                return taken
            conn.execute(Q["upsert_entry"], entry_params(lease, entry))
            if existing.status.is_terminal:  # finished before this parent wrote its entry
                conn.execute(
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
            row = conn.one(Q["get_entry"], {"run_id": lease.run_id, "seq": entry.seq})
            return entry_from_row(row)

        result = await self._write(op)
        self._notify()
        return result

    async def suspend_run(self, lease: Lease, suspension: Suspension, now: float) -> bool:
        def op(conn: Conn) -> tuple[bool, bool]:
            met = False
            if suspension.signals:
                met = (
                    conn.one(
                        Q["signal_waiting"],
                        {"run_id": lease.run_id, "names": json.dumps(list(suspension.signals))},
                    )
                    is not None
                )
            if not met and suspension.child_seqs:
                met = (
                    conn.one(
                        Q["child_done"],
                        {"run_id": lease.run_id, "seqs": json.dumps(list(suspension.child_seqs))},
                    )
                    is not None
                )
            run = conn.one(Q["get_run"], {"run_id": lease.run_id})
            if run is not None and run["cancel_requested"] and not suspension.cancel_delivered:
                met = True
            cur = conn.execute(
                Q["suspend_run"],
                {
                    "status": "pending" if met else "waiting",
                    "wake_at": suspension.wake_at,
                    "wait_signals": json.dumps(list(suspension.signals))
                    if suspension.signals
                    else None,
                    "now": now,
                    "run_id": lease.run_id,
                    "owner": lease.owner,
                    "epoch": lease.epoch,
                },
            )
            return cur.rowcount == 1, met

        held, met = await self._write(op)
        if met:
            self._notify()
        return held

    async def finish_run(
        self,
        lease: Lease,
        status: RunStatus,
        output: str | None,
        error: str | None,
        now: float,
    ) -> bool:
        def op(conn: Conn) -> tuple[bool, bool, str | None]:
            row = conn.one(
                Q["finish_run"],
                {
                    "status": status.value,
                    "output": output,
                    "error": error,
                    "now": now,
                    "run_id": lease.run_id,
                    "owner": lease.owner,
                    "epoch": lease.epoch,
                },
            )
            if row is None:
                return False, False, None
            woke = False
            if row["parent_run_id"] and status.is_terminal:
                conn.execute(
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
                cur = conn.execute(Q["wake_run"], {"run_id": row["parent_run_id"], "now": now})
                woke = cur.rowcount > 0
            return True, woke, row["parent_run_id"]

        held, woke, parent = await self._write(op)
        if woke:
            self._notify()
        if parent and status.is_terminal:
            self._notify_run(parent)
        return held

    async def cancel_children(self, run_id: str, now: float) -> int:
        def op(conn: Conn) -> int:
            return conn.execute(Q["cancel_children"], {"run_id": run_id, "now": now}).rowcount

        count = await self._write(op)
        if count:
            self._notify()
        return count

    async def release_run(self, lease: Lease, now: float) -> bool:
        def op(conn: Conn) -> bool:
            cur = conn.execute(
                Q["release_run"],
                {"now": now, "run_id": lease.run_id, "owner": lease.owner, "epoch": lease.epoch},
            )
            return cur.rowcount == 1

        return await self._write(op)

    async def heartbeat(
        self, worker: WorkerRecord, lease_until: float, run_ids: Sequence[str]
    ) -> dict[str, RunControl]:
        def op(conn: Conn) -> dict[str, RunControl]:
            conn.execute(
                Q["upsert_worker"],
                {
                    "worker_id": worker.worker_id,
                    "host": worker.host,
                    "pid": worker.pid,
                    "started_at": worker.started_at,
                    "heartbeat_at": worker.heartbeat_at,
                },
            )
            conn.execute(
                Q["renew_leases"],
                {"owner": worker.worker_id, "lease_until": lease_until, "ids": json.dumps(run_ids)},
            )
            return {
                r["run_id"]: RunControl(
                    r["lease_epoch"], bool(r["cancel_requested"]), bool(r["paused"])
                )
                for r in conn.all(Q["owned_runs"], {"owner": worker.worker_id})
            }

        return await self._write(op)

    async def deregister_worker(self, worker_id: str) -> None:
        await self._write(lambda conn: conn.execute(Q["delete_worker"], {"worker_id": worker_id}))

    async def list_workers(self) -> list[WorkerRecord]:
        def op(conn: Conn) -> list[WorkerRecord]:
            return [worker_from_row(r) for r in conn.all(Q["list_workers"])]

        return await self._read(op)

    async def expire_leases_of(self, worker_ids: Sequence[str]) -> int:
        def op(conn: Conn) -> int:
            total = 0
            for worker_id in worker_ids:
                total += conn.execute(Q["expire_leases"], {"owner": worker_id}).rowcount
                conn.execute(Q["delete_worker"], {"worker_id": worker_id})
            return total

        count = await self._write(op)
        if count:
            self._notify()
        return count

    async def next_wake_at(self) -> tuple[float | None, float | None]:
        def op(conn: Conn) -> tuple[float | None, float | None]:
            return conn.one(Q["next_timer"])[0], conn.one(Q["next_lease_expiry"])[0]

        return await self._read(op)

    async def data_changed(self) -> bool:
        def op(conn: Conn) -> int:
            return int(conn.one("PRAGMA data_version")[0])

        # data_version changes when *another* connection commits; the writer's own commits
        # do not count, which is exactly "someone else did something". The baseline is
        # taken inside each claim, so a change between a claim and this call is never lost.
        version = await self._write(op)
        changed = version != self._data_version
        self._data_version = version
        return changed

    # -- blueprints ----------------------------------------------------------------------
    async def publish_blueprint(
        self, namespace: str, name: str, version: str, digest: str, source: str, now: float
    ) -> BlueprintRecord:
        key = {"namespace": namespace, "name": name, "version": version}

        def op(conn: Conn) -> BlueprintRecord:
            conn.execute(
                Q["insert_blueprint"], key | {"digest": digest, "source": source, "now": now}
            )
            stored = blueprint_from_row(conn.one(Q["get_blueprint"], key))
            return published_unchanged(stored, digest)

        return await self._write(op)

    async def get_blueprint(
        self, namespace: str, name: str, version: str | None
    ) -> BlueprintRecord | None:
        key = {"namespace": namespace, "name": name, "version": version}

        def op(conn: Conn) -> BlueprintRecord | None:
            if version is None:
                return latest_blueprint(conn.all(Q["blueprint_versions"], key))
            row = conn.one(Q["get_blueprint"], key)
            return blueprint_from_row(row) if row else None

        return await self._read(op)

    async def list_blueprints(self, namespace: str | None = None) -> list[BlueprintRecord]:
        def op(conn: Conn) -> list[BlueprintRecord]:
            return sorted_blueprints(conn.all(Q["list_blueprints"], {"namespace": namespace}))

        return await self._read(op)

    # -- events --------------------------------------------------------------------------
    async def append_event(self, envelope: str, type: str, source: str, now: float) -> int:
        params = {"envelope": envelope, "type": type, "source": source, "now": now}

        def op(conn: Conn) -> int:
            return int(conn.one(Q["insert_event"], params)["id"])

        event_id = await self._write(op)
        self._notify()  # workers holding listening runs look for it at once
        return event_id

    async def read_events(self, after_id: int, since: float, limit: int = 100) -> list[EventRecord]:
        params = {"after_id": after_id, "since": since, "limit": limit}

        def op(conn: Conn) -> list[EventRecord]:
            return [event_from_row(r) for r in conn.all(Q["read_events"], params)]

        return await self._read(op)

    async def set_listening(self, run_id: str, listening: bool, now: float) -> None:
        def op(conn: Conn) -> None:
            if listening:
                conn.execute(Q["insert_listener"], {"run_id": run_id, "now": now})
            else:
                conn.execute(Q["delete_listener"], {"run_id": run_id})

        await self._write(op)

    async def listening_runs(self) -> list[str]:
        def op(conn: Conn) -> list[str]:
            return [r["run_id"] for r in conn.all(Q["listening_runs"])]

        return await self._read(op)


def _holds(conn: Conn, lease: Lease) -> bool:
    params = {"run_id": lease.run_id, "owner": lease.owner, "epoch": lease.epoch}
    return conn.one(Q["check_lease"], params) is not None


def _record_op(lease: Lease, entries: Sequence[JournalEntry]) -> Op:
    def op(conn: Conn) -> bool:
        ok = True
        for entry in entries:
            cur = conn.execute(Q["upsert_entry"], entry_params(lease, entry))
            ok = ok and cur.rowcount == 1
        return ok

    return op
