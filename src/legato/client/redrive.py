"""Which journal entries a retry or a reset drops, decided from the journal alone.

A run is re-driven by dropping some journal entries and running it again: kept entries
are replayed (their steps do not run again), dropped ones run again with the code that
is deployed now. That is how a retry after a bug fix picks up the fix.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import ConfigurationError
from ..records import EntryKind, EntryStatus, JournalEntry, RunRecord, RunStatus
from ..runtime.context import seq_key

RETRYABLE = (RunStatus.FAILED, RunStatus.PARKED)
RESETTABLE = (RunStatus.FAILED, RunStatus.PARKED, RunStatus.CANCELLED, RunStatus.COMPLETED)


def retry_plan(run: RunRecord, journal: Sequence[JournalEntry]) -> list[str]:
    """Positions to drop so the run resumes from the step whose failure ended it.

    That position is recorded with the run's error (``failed_seq``) when a step or a child
    raised the error that ended the run; only it runs again. Failures the workflow caught
    are history and stay. When the workflow's own code raised, nothing is dropped: the
    run replays to that point with the code deployed now. Waits that a run timeout ended
    are dropped too (a retried run is no longer past a deadline, see redrive_run). A
    parked run keeps its whole journal (deploy matching code, then retry).
    """
    if run.status not in RETRYABLE:
        raise ConfigurationError(
            f"run {run.run_id!r} is {run.status.value}; only failed or parked runs can be "
            "retried (use `legato runs reset RUN --to-step N` to re-run part of another run)"
        )
    if any(e.kind is EntryKind.COMPENSATE for e in journal):
        raise ConfigurationError(
            f"run {run.run_id!r} already ran its compensations, so the steps it completed "
            "were undone; resuming it would build on undone work. Start a new run, or "
            f"`legato runs reset {run.run_id} --to-step 1` to run it again from the start"
        )
    if run.status is RunStatus.PARKED:
        return []
    failed_seq = (run.error_dict() or {}).get("failed_seq")
    return [
        e.seq
        for e in journal
        if e.seq == failed_seq or e.kind is EntryKind.CANCEL or e.status is EntryStatus.CANCELLED
    ]


def reset_plan(run: RunRecord, journal: Sequence[JournalEntry], to_step: str) -> list[str]:
    """Positions to drop so the run runs again from position ``to_step`` on."""
    if run.status not in RESETTABLE:
        raise ConfigurationError(
            f"run {run.run_id!r} is {run.status.value}; wait until it has ended (or cancel "
            "it) before resetting it"
        )
    try:
        start = seq_key(to_step)
    except ValueError:
        raise ConfigurationError(
            f"--to-step {to_step!r} is not a position: use a number from the seq column of "
            f"`legato runs show {run.run_id}` (e.g. 3, or 4.2 inside a parallel branch)"
        ) from None
    if not any(seq_key(e.seq) == start for e in journal):
        known = ", ".join(e.seq for e in journal) or "none"
        raise ConfigurationError(
            f"run {run.run_id!r} has no position {to_step} (positions: {known})"
        )
    return [e.seq for e in journal if seq_key(e.seq) >= start]
