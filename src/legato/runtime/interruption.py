"""Step attempts cut short by a worker's death: what the replay on the next worker does.

A step running longer than ``RUNNING_MARK_DELAY`` is journalled ``running`` with its
attempt number. A replay that finds it still ``running`` knows the attempt was
interrupted (the worker died, or lost its lease, before the attempt ended). That attempt
counts toward the step's retry policy like an attempt that raised
:class:`~legato.errors.StepInterrupted`: if the policy allows another, the next attempt
starts; if not, the step fails for good.

A step declared without a retry policy (the default, which retries no exception) is the
exception: it is started again after every crash, as steps are at-least-once, and only the
worker's run-level ``max_recoveries`` bounds how often.

Pure functions of the journal entry and the step, so the workflow context stays small.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import StepError, StepInterrupted
from ..records import EntryStatus, JournalEntry
from .diagnostics import describe_error
from .retry import NO_RETRY

if TYPE_CHECKING:
    from .definitions import Step


def cut_short(entry: JournalEntry) -> bool:
    """Was the attempt the entry shows in flight interrupted before it ended?

    An entry is also ``running`` between a failed attempt and a short (in-memory) back-off
    before the next one: that attempt ended, its failure is in the history, and the policy
    already allowed the next attempt, so a crash during the back-off interrupted nothing.
    """
    if entry.status is not EntryStatus.RUNNING:
        return False
    history = entry.attempt_list()
    last = history[-1] if history else None
    return not (last and last.get("attempt") == entry.attempts and last.get("ended_at"))


def interrupted_record(entry: JournalEntry) -> dict[str, Any]:
    """The attempt-history record of the attempt a ``running`` entry shows in flight."""
    return {
        "attempt": entry.attempts,
        "started_at": entry.started_at,
        "ended_at": None,
        "error": {"type": "Interrupted", "message": "the worker stopped mid-attempt"},
    }


def interrupted_for_good(
    step: Step[Any, Any],
    entry: JournalEntry,
    history: list[dict[str, Any]],
    now: float,
) -> tuple[JournalEntry, StepError] | None:
    """If the interrupted attempt was the step's last allowed one: the failed entry to
    record and the error to raise in the workflow. None: start the next attempt.

    ``history`` is the step's attempt history, the interrupted attempt included.
    """
    if step.retry is NO_RETRY:
        return None
    cause = StepInterrupted(
        f"step {step.name!r} (attempt {entry.attempts} of {step.retry.max_attempts}) was "
        "interrupted: the worker running it died or lost its lease mid-attempt, and its "
        "retry policy allows no further attempt. Fix what kills the worker, or allow more "
        "attempts if the step may safely start again (see legato.idempotency_key()); then "
        f"`legato runs retry {entry.run_id}`"
    )
    if step.retry.should_retry(cause, entry.attempts):
        return None
    failed = replace(
        entry,
        status=EntryStatus.FAILED,
        error=describe_error(cause),
        attempt_log=json.dumps(history),
        ended_at=now,
    )
    error = StepError(
        step.name,
        f"{type(cause).__module__}.{type(cause).__qualname__}",
        str(cause),
        entry.attempts,
        entry.seq,
    )
    error.__cause__ = cause
    return failed, error
