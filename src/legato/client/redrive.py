"""Which journal entries a retry or a reset drops, decided from the journal alone.

A run is re-driven by dropping some journal entries and running it again: kept entries
are replayed (their steps do not run again), dropped ones run again with the code that
is deployed now. That is how a retry after a bug fix picks up the fix.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from ..errors import Conflict, InvalidInput
from ..records import EntryKind, EntryStatus, JournalEntry, RunRecord, RunStatus
from ..runtime.context import seq_key

RETRYABLE = (RunStatus.FAILED, RunStatus.PARKED)
RESETTABLE = (RunStatus.FAILED, RunStatus.PARKED, RunStatus.CANCELLED, RunStatus.COMPLETED)


def retry_plan(run: RunRecord, journal: Sequence[JournalEntry]) -> list[str]:
    """Positions to drop so the run resumes from the step whose failure ended it.

    That position is recorded with the run's error (``failed_seq``) when a step or a child
    raised the error that ended the run. It runs again, and so does everything the run
    did *because of* that failure (see :func:`after_failure`): an ``except StepError:``
    block that called ``alert()`` and re-raised must not be met again by the fixed code,
    which now continues differently. Failures the workflow caught and that did not end the
    run are history and stay. When the workflow's own code raised, nothing is dropped: the
    run replays to that point with the code deployed now. Waits that a run timeout ended
    are dropped too (a retried run is no longer past a deadline, see redrive_run). A
    parked run keeps its whole journal (deploy matching code, then retry).
    """
    if run.status not in RETRYABLE:
        raise Conflict(
            f"run {run.run_id!r} is {run.status.value}; only failed or parked runs can be "
            "retried (use `legato runs reset RUN --to-step N` to re-run part of another run)"
        )
    if any(e.kind is EntryKind.COMPENSATE for e in journal):
        raise Conflict(
            f"run {run.run_id!r} already ran its compensations, so the steps it completed "
            "were undone; resuming it would build on undone work. Start a new run, or "
            f"`legato runs reset {run.run_id} --to-step 1` to run it again from the start"
        )
    if run.status is RunStatus.PARKED:
        return []
    drop = {
        e.seq for e in journal if e.kind is EntryKind.CANCEL or e.status is EntryStatus.CANCELLED
    }
    failed_seq = (run.error_dict() or {}).get("failed_seq")
    failed = next((e for e in journal if e.seq == failed_seq), None)
    if failed is not None:
        drop |= after_failure(failed, journal)
    return sorted(drop, key=seq_key)


def after_failure(failed: JournalEntry, journal: Sequence[JournalEntry]) -> set[str]:
    """The failed position and every entry after it in its task's lineage.

    Positions name their task: a task created by the ``k``-th command of the task with
    prefix ``P`` has prefix ``P.k.`` (docs/decisions/0001), so ``4.1.2`` is the second
    command of the first task created by the root's fourth. For a failure at
    ``f1.f2...fn``, look at each task of its lineage, from the failing task up to the
    root (at depth ``i``, the task with prefix ``f1...f(i-1).``, whose counter ``fi`` is
    the step that failed or the creation of the task that holds it):

    * **The failing task** (depth ``n``): every later position (counter above ``fn``)
      and everything under the tasks it created at those positions. The task awaited the
      step, got the error and went on from there, so all of it came after the failure.
      Earlier positions, and the tasks created at them, are kept.
    * **Each ancestor** (depth ``i < n``): its later positions hold its own later commands
      and the tasks it created after the one leading to the failure. Parallel branches
      it started beside that task (``asyncio.gather(charge(), ship())``) are siblings:
      they did not come from the failure and are kept, so their completed steps do not
      run again. What the ancestor did once the failure reached it (its ``except``
      block, the code after a ``gather`` that raised) is dropped. The journal tells the
      two apart by time: walking the later positions in order, the first one whose
      entries (its own, or those of the task created there) all started at or after the
      moment the failure was recorded, and every position after it, are dropped; the
      earlier ones started before the failure existed, so they are siblings.

    Dropping too much is safe (a dropped step runs again, at least once as always);
    keeping an entry the fixed code does not reach would park the run. So where time
    cannot tell (a virtual clock that stands still, a branch that had issued nothing yet
    when the failure was recorded), the position counts as after the failure.
    Earlier positions at every depth are kept.
    """
    path = seq_key(failed.seq)
    failed_at = failed.ended_at if failed.ended_at is not None else -math.inf
    keys = [(seq_key(e.seq), e) for e in journal]
    drop = {failed.seq}
    for depth in range(len(path)):
        prefix, counter = path[:depth], path[depth]
        later: dict[int, list[JournalEntry]] = defaultdict(list)
        for key, entry in keys:
            if len(key) > depth and key[:depth] == prefix and key[depth] > counter:
                later[key[depth]].append(entry)
        cut = False  # from here on, everything at this depth came after the failure
        for position in sorted(later):
            entries = later[position]
            if depth == len(path) - 1:
                cut = True
            elif not cut:
                started = [e.started_at for e in entries if e.started_at is not None]
                cut = not started or min(started) >= failed_at
            if cut:
                drop.update(e.seq for e in entries)
    return drop


def reset_plan(run: RunRecord, journal: Sequence[JournalEntry], to_step: str) -> list[str]:
    """Positions to drop so the run runs again from position ``to_step`` on."""
    if run.status not in RESETTABLE:
        raise Conflict(
            f"run {run.run_id!r} is {run.status.value}; wait until it has ended (or cancel "
            "it) before resetting it"
        )
    try:
        start = seq_key(to_step)
    except ValueError:
        raise InvalidInput(
            f"--to-step {to_step!r} is not a position: use a number from the seq column of "
            f"`legato runs show {run.run_id}` (e.g. 3, or 4.2 inside a parallel branch)"
        ) from None
    if not any(seq_key(e.seq) == start for e in journal):
        known = ", ".join(e.seq for e in journal) or "none"
        raise InvalidInput(f"run {run.run_id!r} has no position {to_step} (positions: {known})")
    return [e.seq for e in journal if seq_key(e.seq) >= start]
