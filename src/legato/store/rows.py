"""Row converters and statement parameters shared by the SQL backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import Conflict
from ..records import (
    BlueprintRecord,
    EntryKind,
    EntryStatus,
    EventRecord,
    JournalEntry,
    NewRun,
    Pause,
    PauseScope,
    QueueLimits,
    RunRecord,
    RunStatus,
    SignalRecord,
    Wakeup,
    WorkerRecord,
    semver_key,
)
from .base import Lease

Row = Mapping[str, Any]


def run_from_row(row: Row) -> RunRecord:
    signals = row["wait_signals"]
    return RunRecord(
        run_id=row["run_id"],
        workflow=row["workflow"],
        status=RunStatus(row["status"]),
        input=row["input"],
        output=row["output"],
        error=row["error"],
        version=row["version"],
        parent_run_id=row["parent_run_id"],
        parent_seq=row["parent_seq"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        wake_at=row["wake_at"],
        wait_signals=tuple(json.loads(signals)) if signals else (),
        owner=row["owner"],
        lease_epoch=row["lease_epoch"],
        lease_expires_at=row["lease_expires_at"],
        cancel_requested=bool(row["cancel_requested"]),
        queue=row["queue"],
        priority=row["priority"],
        concurrency_key=row["concurrency_key"],
        paused=bool(row["paused"]),
        redrives=row["redrives"],
        detached=bool(row["detached"]),
        deadline_at=row["deadline_at"],
        recoveries=row["recoveries"],
        requires=_names(row["requires"]),
        signals=row["signals"],
    )


def _names(text: str | None) -> tuple[str, ...]:
    """A JSON array of names as stored (NULL: none)."""
    return tuple(json.loads(text)) if text else ()


def _names_param(names: Sequence[str]) -> str | None:
    """Names as stored: a JSON array, or NULL for none (what claims test first)."""
    return json.dumps(list(names)) if names else None


def pause_from_row(row: Row) -> Pause:
    return Pause(PauseScope(row["scope"]), row["name"], row["created_at"])


def queue_from_row(row: Row) -> QueueLimits:
    return QueueLimits(
        name=row["name"],
        concurrency=row["concurrency"],
        key_concurrency=row["key_concurrency"],
        rate_limit=row["rate_limit"],
        rate_period=row["rate_period"],
    )


def entry_from_row(row: Row) -> JournalEntry:
    return JournalEntry(
        run_id=row["run_id"],
        seq=row["seq"],
        kind=EntryKind(row["kind"]),
        name=row["name"],
        status=EntryStatus(row["status"]),
        attempts=row["attempts"],
        input=row["input"],
        output=row["output"],
        error=row["error"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        wake_at=row["wake_at"],
        child_run_id=row["child_run_id"],
        attempt_log=row["attempt_log"],
        progress=row["progress"],
    )


def entry_params(lease: Lease, entry: JournalEntry) -> dict[str, Any]:
    return {
        "run_id": lease.run_id,
        "owner": lease.owner,
        "epoch": lease.epoch,
        "seq": entry.seq,
        "kind": entry.kind.value,
        "name": entry.name,
        "status": entry.status.value,
        "attempts": entry.attempts,
        "input": entry.input,
        "output": entry.output,
        "error": entry.error,
        "started_at": entry.started_at,
        "ended_at": entry.ended_at,
        "wake_at": entry.wake_at,
        "child_run_id": entry.child_run_id,
        "attempt_log": entry.attempt_log,
        "progress": entry.progress,
    }


def signal_from_row(row: Row) -> SignalRecord:
    return SignalRecord(
        signal_id=row["signal_id"],
        run_id=row["run_id"],
        name=row["name"],
        payload=row["payload"],
        created_at=row["created_at"],
    )


def worker_from_row(row: Row) -> WorkerRecord:
    return WorkerRecord(
        worker_id=row["worker_id"],
        host=row["host"],
        pid=row["pid"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        runs=row["runs"],
        app=row["app"],
        queues=_names(row["queues"]),
        workflows=_names(row["workflows"]),
        capabilities=_names(row["capabilities"]),
    )


def worker_params(worker: WorkerRecord) -> dict[str, Any]:
    return {
        "worker_id": worker.worker_id,
        "host": worker.host,
        "pid": worker.pid,
        "started_at": worker.started_at,
        "heartbeat_at": worker.heartbeat_at,
        "app": worker.app,
        "queues": _names_param(worker.queues),
        "workflows": _names_param(worker.workflows),
        "capabilities": _names_param(worker.capabilities),
    }


def new_run_params(new: NewRun, now: float) -> dict[str, Any]:
    return {
        "run_id": new.run_id,
        "workflow": new.workflow,
        "version": new.version,
        "input": new.input,
        "parent_run_id": new.parent_run_id,
        "parent_seq": new.parent_seq,
        "now": now,
        "queue": new.queue,
        "priority": new.priority,
        "concurrency_key": new.concurrency_key,
        "detached": new.detached,
        "deadline_at": new.deadline_at,
        "requires": _names_param(new.requires),
        "signals": new.signals,
    }


def queue_params(limits: QueueLimits) -> dict[str, Any]:
    return {
        "name": limits.name,
        "concurrency": limits.concurrency,
        "key_concurrency": limits.key_concurrency,
        "rate_limit": limits.rate_limit,
        "rate_period": limits.rate_period,
    }


def child_id_taken(entry: JournalEntry, child_run_id: str, now: float) -> JournalEntry:
    """The parent's entry for a child whose requested run id another run already has."""
    message = (
        f"run id {child_run_id!r} is already used by another run; "
        "give each child run a unique run_id"
    )
    error = json.dumps({"type": "ChildRunIdTaken", "message": message})
    return replace(entry, status=EntryStatus.FAILED, ended_at=now, error=error)


def child_entry_status(status: RunStatus) -> str:
    """What a parent's entry becomes when its child run ends in ``status``."""
    done = status is RunStatus.COMPLETED
    return EntryStatus.COMPLETED.value if done else EntryStatus.FAILED.value


def report_write_failure(
    on_failure: Callable[[BaseException | None], None],
) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback for a queued write: ``on_failure(None)`` if fenced, ``(exc)`` if failed."""

    def done(fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None or not fut.result():
            on_failure(exc)

    return done


def blueprint_from_row(row: Row) -> BlueprintRecord:
    return BlueprintRecord(
        namespace=row["namespace"],
        name=row["name"],
        version=row["version"],
        digest=row["digest"],
        source=row["source"],
        published_at=row["published_at"],
    )


def latest_blueprint(rows: Sequence[Row]) -> BlueprintRecord | None:
    """The highest version by semantic-version precedence (text order cannot: 1.10 > 1.9)."""
    records = [blueprint_from_row(r) for r in rows]
    return max(records, key=lambda r: semver_key(r.version), default=None)


def sorted_blueprints(rows: Sequence[Row]) -> list[BlueprintRecord]:
    """By namespace, name, then version in semantic-version order (oldest first)."""
    records = [blueprint_from_row(r) for r in rows]
    return sorted(records, key=lambda r: (r.namespace, r.name, semver_key(r.version)))


def published_unchanged(existing: BlueprintRecord, digest: str) -> BlueprintRecord:
    """``existing`` if it has ``digest``; otherwise refuse: a published version is immutable."""
    if existing.digest == digest:
        return existing
    raise Conflict(
        f"blueprint {existing.namespace}/{existing.name} version {existing.version} is "
        f"already published with different content (digest {existing.digest[:12]}… vs "
        f"{digest[:12]}…): published versions are immutable; change document.version and "
        f"publish it as a new version (e.g. {next_patch(existing.version)})"
    )


def next_patch(version: str) -> str:
    """A version after ``version``, for the refusal's hint: 1.0.0 -> 1.0.1, -rc.1 -> -rc.2."""
    core = version.split("+", 1)[0]
    head, dash, pre = core.partition("-")
    parts = (pre if dash else head).split(".")
    if parts[-1].isdigit() and (dash or len(parts) == 3):
        parts[-1] = str(int(parts[-1]) + 1)
        return f"{head}-{'.'.join(parts)}" if dash else ".".join(parts)
    return f"{core}.1"


def event_from_row(row: Row) -> EventRecord:
    return EventRecord(
        id=row["id"], published_at=row["published_at"], envelope=json.loads(row["envelope"])
    )


def wakeups_of(
    run_ids: Sequence[str],
    cancels: set[str],
    signals: dict[str, set[str]],
    children: dict[str, list[JournalEntry]],
) -> list[Wakeup]:
    """One :class:`Wakeup` per run that has anything waiting for it."""
    found = []
    for run_id in dict.fromkeys([*run_ids, *signals, *children]):
        if run_id in cancels or run_id in signals or run_id in children:
            found.append(
                Wakeup(
                    run_id,
                    run_id in cancels,
                    frozenset(signals.get(run_id, ())),
                    tuple(children.get(run_id, ())),
                )
            )
    return found
