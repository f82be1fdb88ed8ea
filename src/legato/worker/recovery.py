"""The run-level recovery limit: what a run that keeps killing its workers is parked with.

Each claim of a run whose lease expired (or was freed because its worker's process is
gone) is a recovery, counted on the run by the store. A step that crashes its process
(OOM, a segfault, ``os._exit``) would otherwise kill every worker that takes the run over,
for ever; past the worker's ``max_recoveries`` the run is parked for an operator instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..records import EntryStatus, JournalEntry, RunRecord

RECOVERY_LIMIT = "RecoveryLimitExceeded"
"""The error type of a run parked because it passed the recovery limit."""


def in_flight(journal: Mapping[str, JournalEntry]) -> list[JournalEntry]:
    """The steps the journal shows ``running``: attempts the last worker never finished."""
    return [e for e in journal.values() if e.status is EntryStatus.RUNNING]


def recovery_limit_error(run: RunRecord, journal: Mapping[str, JournalEntry], limit: int) -> str:
    """The run's error (JSON) when it is parked for passing ``limit`` recoveries."""
    running = in_flight(journal)
    if running:
        steps = "; ".join(_describe(e) for e in running)
        suspect = f"In flight when the last worker died: {steps}."
        what = "fix the step (or what kills its worker: memory, a native crash, os._exit)"
    else:
        suspect = (
            "No step is journalled running, so the crash came from a step that died within "
            "50 ms of starting, from the workflow code itself, or from another run in the "
            "same worker (if other runs were parked with it, look at those too)."
        )
        what = "fix what kills the worker"
    message = (
        f"run {run.run_id} ({run.workflow}) keeps killing its workers: a worker died (or "
        f"lost its lease) while holding it {run.recoveries} times, more than the "
        f"{limit} recoveries allowed (max_recoveries), so it is parked instead of being run "
        f"again. {suspect} To go on: {what}, then `legato runs retry {run.run_id}` (the "
        "journal is kept, completed steps are not run again, the count starts afresh)."
    )
    described: dict[str, Any] = {
        "type": RECOVERY_LIMIT,
        "message": message,
        "recoveries": run.recoveries,
        "max_recoveries": limit,
        "in_flight": [{"step": e.name, "seq": e.seq, "attempt": e.attempts} for e in running],
    }
    return json.dumps(described)


def _describe(entry: JournalEntry) -> str:
    started = ""
    if entry.started_at is not None:
        moment = datetime.fromtimestamp(entry.started_at, tz=UTC)
        started = f", first started {moment:%Y-%m-%d %H:%M:%S} UTC"
    return (
        f"{entry.kind.value} {entry.name!r} at position {entry.seq} "
        f"(attempt {entry.attempts}{started})"
    )
