"""Legato's exception tree.

Every error Legato raises on purpose derives from :class:`LegatoError`, so one
``except legato.LegatoError`` catches them all::

    LegatoError
    ├── ConfigurationError        bad database URL, unknown app or workflow, bad input
    ├── PayloadError              a value that cannot be turned into JSON or back
    ├── StoreError                the database cannot be reached or is not usable
    │   └── SchemaError           the database schema is newer/older than this Legato
    ├── RunNotFound               no run with that id
    ├── WorkflowError             raised *inside* workflow code by Legato commands
    │   ├── StepError             a step failed after its retries; carries the cause
    │   ├── ChildRunError         a child run failed or was cancelled
    │   ├── WaitTimeout           wait_for_signal / wait_any timed out
    │   ├── StepTimeout           a step attempt overran its timeout or heartbeat timeout
    │   └── NonDeterminismError   the code no longer matches the run's journal
    ├── RunFailed                 awaiting a run's result and the run failed
    └── LeaseLost                 (internal) this worker no longer owns a run

Messages say what happened, to what (run id, step, file:line) and what to do.
"""

from __future__ import annotations

from typing import Any


class LegatoError(Exception):
    """Base class of every error Legato raises on purpose."""


class ConfigurationError(LegatoError):
    """Bad configuration or input given by a user: fix the input and try again."""


class PayloadError(LegatoError):
    """A value could not be serialised to JSON, or JSON did not fit the expected type."""


class StoreError(LegatoError):
    """The database could not be reached or used."""


class SchemaError(StoreError):
    """The database schema does not match what this version of Legato expects."""


class RunNotFound(LegatoError):
    """No run exists with the given id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}: check the id with `legato runs list`")
        self.run_id = run_id


class WorkflowError(LegatoError):
    """Raised inside workflow code by Legato's commands."""


class StepError(WorkflowError):
    """A step failed for good (after its retries).

    The original exception object is not rebuilt on replay (that would need pickle), so
    the workflow always sees this error, in the first run and in every replay alike.
    ``error_type`` is the qualified name of the original exception class.
    """

    def __init__(
        self, step: str, error_type: str, message: str, attempts: int = 1, seq: str = ""
    ) -> None:
        super().__init__(
            f"step {step!r} failed after {attempts} attempt(s): {error_type}: {message}"
        )
        self.step = step
        self.error_type = error_type
        self.error_message = message
        self.attempts = attempts
        self.seq = seq  # its position in the run's journal


class ChildRunError(WorkflowError):
    """A child run ended in failure or was cancelled."""

    def __init__(
        self, run_id: str, status: str, error: dict[str, Any] | None, seq: str = ""
    ) -> None:
        detail = f": {error.get('type')}: {error.get('message')}" if error else ""
        super().__init__(f"child run {run_id!r} ended {status}{detail}")
        self.run_id = run_id
        self.status = status
        self.error = error
        self.seq = seq  # the position of the child in the parent's journal


class WaitTimeout(WorkflowError, TimeoutError):
    """A durable wait (signal, wait_any) reached its timeout before anything arrived."""


class StepTimeout(WorkflowError, TimeoutError):
    """One attempt of a step ran past its ``timeout`` or stopped heartbeating.

    It fails that attempt (the retry policy decides what comes next); the workflow sees
    a :class:`StepError` whose ``error_type`` is ``legato.errors.StepTimeout``.
    """


class NonDeterminismError(WorkflowError):
    """The workflow code issued a command that does not match the run's journal.

    This happens when code changes under a running workflow. The run is parked (not
    failed, not corrupted): deploy code that matches, guard the change with
    ``legato.patched(...)``, or retry the run explicitly.
    """


class RunFailed(LegatoError):
    """A run ended in failure (or was cancelled or parked) while a caller awaited its result."""

    def __init__(self, run_id: str, status: str, error: dict[str, Any] | None) -> None:
        detail = f" - {error.get('type')}: {error.get('message')}" if error else ""
        super().__init__(f"run {run_id!r} ended {status}{detail}")
        self.run_id = run_id
        self.status = status
        self.error = error


class LeaseLost(LegatoError):
    """This worker's lease on a run was taken over; it must stop writing for that run."""
