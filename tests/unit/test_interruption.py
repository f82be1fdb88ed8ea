"""What a replay does with a step attempt its worker's death cut short (runtime/interruption)."""

from __future__ import annotations

import json
from dataclasses import replace

import legato
from legato.records import EntryKind, EntryStatus, JournalEntry
from legato.runtime.interruption import cut_short, interrupted_for_good, interrupted_record


def running(attempts: int) -> JournalEntry:
    return JournalEntry(
        "r1", "2", EntryKind.STEP, "charge", EntryStatus.RUNNING, attempts=attempts, input="[]"
    )


def charge() -> None:
    """A step body; never called here."""


def test_an_interrupted_attempt_is_recorded_in_the_attempt_history() -> None:
    record = interrupted_record(replace(running(2), started_at=5.0))
    assert record == {
        "attempt": 2,
        "started_at": 5.0,
        "ended_at": None,
        "error": {"type": "Interrupted", "message": "the worker stopped mid-attempt"},
    }


def test_attempts_left_start_the_next_one_and_the_last_one_fails_the_step() -> None:
    step = legato.Step(charge, retry=legato.Retry(max_attempts=3))
    assert interrupted_for_good(step, running(2), [], 9.0) is None
    history = [interrupted_record(running(3))]
    ended = interrupted_for_good(step, running(3), history, 9.0)
    assert ended is not None
    failed, error = ended
    assert failed.status is EntryStatus.FAILED and failed.ended_at == 9.0
    assert failed.attempts == 3 and failed.input == "[]"
    assert failed.attempt_list() == history
    assert json.loads(failed.error or "{}")["type"] == "legato.errors.StepInterrupted"
    assert isinstance(error, legato.StepError)  # what `except StepError` catches
    assert error.error_type == "legato.errors.StepInterrupted"
    assert (error.step, error.attempts, error.seq) == ("charge", 3, "2")
    assert isinstance(error.__cause__, legato.StepInterrupted)
    assert "attempt 3 of 3" in str(error) and "legato runs retry r1" in str(error)


def test_the_policy_decides_as_for_any_failure() -> None:
    never_again = legato.Retry(max_attempts=5, non_retryable=(legato.StepInterrupted,))
    step = legato.Step(charge, retry=never_again)
    assert interrupted_for_good(step, running(1), [], 9.0) is not None


def test_a_step_without_a_retry_policy_is_started_again_after_every_crash() -> None:
    step = legato.Step(charge)  # at-least-once; the worker's max_recoveries bounds it
    assert interrupted_for_good(step, running(7), [], 9.0) is None
    explicit_single = legato.Step(charge, retry=legato.Retry(max_attempts=1))
    assert interrupted_for_good(explicit_single, running(1), [], 9.0) is not None


def test_a_crash_during_a_short_back_off_interrupted_no_attempt() -> None:
    failed_first = {"attempt": 1, "started_at": 1.0, "ended_at": 2.0, "error": {"type": "E"}}
    backing_off = replace(running(1), attempt_log=json.dumps([failed_first]))
    assert not cut_short(backing_off)  # attempt 1 ended; attempt 2 had not started
    second_started = replace(running(2), attempt_log=json.dumps([failed_first]))
    assert cut_short(second_started) and cut_short(running(1))
    assert not cut_short(replace(running(1), status=EntryStatus.WAITING))
