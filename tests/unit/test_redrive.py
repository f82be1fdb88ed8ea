"""Which entries `runs retry` drops: the failed position and what came after it in its
lineage; earlier positions and parallel siblings are kept (client/redrive.py)."""

from __future__ import annotations

import json

import pytest

import legato
from legato.client.redrive import after_failure, reset_plan, retry_plan
from legato.records import EntryKind, EntryStatus, JournalEntry, RunRecord, RunStatus


def entry(
    seq: str, started: float, ended: float | None = None, failed: bool = False
) -> JournalEntry:
    status = EntryStatus.FAILED if failed else EntryStatus.COMPLETED
    return JournalEntry(
        "r",
        seq,
        EntryKind.STEP,
        f"s{seq}",
        status,
        1,
        started_at=started,
        ended_at=ended or started,
    )


def dropped(failed: str, *journal: JournalEntry) -> list[str]:
    by_seq = {e.seq: e for e in journal}
    return sorted(after_failure(by_seq[failed], journal))


def test_a_handler_in_the_failing_task_is_dropped_with_the_failure() -> None:
    # reserve; try: charge except StepError: alert(); raise
    journal = (entry("1", 0), entry("2", 1, 2, failed=True), entry("3", 3))
    assert dropped("2", *journal) == ["2", "3"]


def test_tasks_the_failing_task_created_before_are_kept_after_are_dropped() -> None:
    journal = (
        entry("1.1.1", 0),  # created by task 1. before the failure
        entry("1.2", 1, 2, failed=True),
        entry("1.3", 3),
        entry("1.4.1", 4),  # created by task 1. in its handler
    )
    assert dropped("1.2", *journal) == ["1.2", "1.3", "1.4.1"]


def test_parallel_siblings_are_kept_and_the_parents_handler_is_dropped() -> None:
    # root: gather(a(), b()) -> tasks 1. and 2.; a fails; root: except: gather(x(), y())
    journal = (
        entry("1.1", 0.0),
        entry("1.2", 1.0, 3.0, failed=True),
        entry("2.1", 1.5),
        entry("2.2", 4.0),  # b went on after a failed: still a sibling, kept
        entry("3.1", 5.0),  # the handler's own tasks
        entry("4.1", 5.0),
        entry("5", 6.0),  # the handler's own step
    )
    assert dropped("1.2", *journal) == ["1.2", "3.1", "4.1", "5"]


def test_every_ancestor_keeps_its_siblings_and_drops_its_handler() -> None:
    # root: 1; gather(x(), y()) -> 2., 3.; x: 2.1; gather(p(), q()) -> 2.2., 2.3.; p fails
    journal = (
        entry("1", 0.0),
        entry("2.1", 1.0),
        entry("2.2.1", 2.0, 4.0, failed=True),
        entry("2.2.2", 5.0),  # p's own handler
        entry("2.3.1", 2.0),  # q: sibling of p
        entry("2.4", 6.0),  # x's handler
        entry("3.1", 1.0),  # y: sibling of x
        entry("3.2", 7.0),
        entry("4", 8.0),  # the root's handler
    )
    assert dropped("2.2.1", *journal) == ["2.2.1", "2.2.2", "2.4", "4"]


def test_an_ancestor_command_begun_before_the_failure_is_kept() -> None:
    # root: t = create_task(a()); await slow(); await t  -> a fails while slow runs
    journal = (
        entry("1.1", 1.0, 2.0, failed=True),
        entry("2", 0.5, 10.0),
        entry("3", 11.0),
    )
    assert dropped("1.1", *journal) == ["1.1", "3"]


def test_without_time_to_tell_later_positions_count_as_after_the_failure() -> None:
    # a virtual clock that stood still: the sibling runs again, nothing is kept wrongly
    journal = (entry("1.1", 5.0, 5.0, failed=True), entry("2.1", 5.0), entry("3", 5.0))
    assert dropped("1.1", *journal) == ["1.1", "2.1", "3"]


def test_retry_plan_adds_stopped_waits_and_keeps_everything_without_a_failed_step() -> None:
    journal = [
        entry("1", 0),
        entry("2", 1, 2, failed=True),
        entry("3", 3),
        JournalEntry("r", "4", EntryKind.CANCEL, "timeout", EntryStatus.COMPLETED),
    ]
    failed = RunRecord("r", "wf", RunStatus.FAILED, error=json.dumps({"failed_seq": "2"}))
    assert retry_plan(failed, journal) == ["2", "3", "4"]
    own_code = RunRecord("r", "wf", RunStatus.FAILED, error=json.dumps({"type": "KeyError"}))
    assert retry_plan(own_code, journal) == ["4"]


def test_a_redrive_the_run_state_forbids_is_a_conflict_a_bad_position_invalid_input() -> None:
    journal = [entry("1", 0), entry("2", 1)]
    running = RunRecord("r", "wf", RunStatus.RUNNING)
    with pytest.raises(legato.Conflict, match="only failed or parked"):
        retry_plan(running, journal)
    with pytest.raises(legato.Conflict, match="wait until it has ended"):
        reset_plan(running, journal, "1")
    completed = RunRecord("r", "wf", RunStatus.COMPLETED)
    with pytest.raises(legato.InvalidInput, match="not a position"):
        reset_plan(completed, journal, "x")
    with pytest.raises(legato.InvalidInput, match="no position 7"):
        reset_plan(completed, journal, "7")
