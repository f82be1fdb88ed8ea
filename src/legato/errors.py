"""Legato's exception tree: every error maps by its class to one HTTP status.

Every error Legato raises on purpose derives from :class:`LegatoError`, so one
``except legato.LegatoError`` catches them all. Each class carries ``http_status``, the
status an HTTP layer answers with (``legato.errors.http_status(exc)``)::

    LegatoError                    500
    ├── InvalidInput               400  bad input: an argument, an id, a document
    │   ├── PayloadError           400  a value that cannot be turned into JSON or back
    │   └── BlueprintInvalid       400  a blueprint document failed validation
    ├── NotFound                   404  no such thing
    │   ├── RunNotFound            404  no run with that id
    │   ├── BlueprintNotFound      404  no published blueprint with that name and version
    │   └── WorkflowNotFound       404  no registered workflow with that name
    ├── Conflict                   409  the request clashes with the state it found
    │   ├── RunEnded               409  the run has ended (no signals, no redrive)
    │   └── RunChanged             409  the run changed meanwhile (a lost race)
    ├── Unavailable                503  the database cannot be reached now: retry
    ├── ConfigurationError         500  bad settings (a database URL, an option)
    │   └── SchemaError            500  the database schema is newer/older than this Legato
    ├── RunFailed                  422  awaiting a run's result and the run failed
    ├── StepCancelled              409  raised by legato.heartbeat() in a step whose run stops
    └── WorkflowError              500  raised *inside* workflow code by Legato commands
        ├── StepError                   a step failed after its retries; carries the cause
        ├── ChildRunError               a child run failed or was cancelled
        ├── WaitTimeout                 wait_for_signal / wait_any timed out
        ├── StepTimeout                 a step attempt overran its timeout or heartbeat
        ├── StepInterrupted             a step's last allowed attempt was cut short
        ├── NonDeterminismError         the code no longer matches the run's journal
        └── BlueprintFault              a blueprint task raised a DSL error (RFC 7807)
            └── ExpressionError         a runtime expression could not be compiled

    ``StoreError`` is the old name of :class:`Unavailable` and stays an alias of it.

    LeaseLost (a BaseException, like asyncio.CancelledError, outside the tree): raised into
    workflow code of a run this worker no longer owns, so no ``except Exception`` can
    swallow it and carry on executing.

Driver errors (sqlite3, psycopg) never leave the store: it translates them into
:class:`Unavailable` (or :class:`Conflict` for a broken constraint). Messages say what
happened, to what (run id, step, file:line) and what to do.
"""

from __future__ import annotations

from typing import Any


class LegatoError(Exception):
    """Base class of every error Legato raises on purpose."""

    http_status: int = 500


class InvalidInput(LegatoError):
    """The input of a call is wrong (an argument, an id, a document): fix it and retry."""

    http_status = 400


class NotFound(LegatoError):
    """The thing asked for (a run, a blueprint, a version, a workflow) does not exist."""

    http_status = 404


class Conflict(LegatoError):
    """The request clashes with the state it found: the run ended, a race was lost, a
    version is taken, an id is used by another workflow. Look again before retrying."""

    http_status = 409


class Unavailable(LegatoError):
    """The database cannot be reached or answered with an error: retrying may succeed."""

    http_status = 503


StoreError = Unavailable
"""The old name of :class:`Unavailable`, kept so existing ``except`` clauses still work."""


class ConfigurationError(LegatoError):
    """Bad settings (a database URL, an option, an app that cannot be loaded)."""


class SchemaError(ConfigurationError):
    """The database schema does not match what this version of Legato expects."""


class PayloadError(InvalidInput):
    """A value could not be serialised to JSON, or JSON did not fit the expected type."""


class RunNotFound(NotFound):
    """No run exists with the given id."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"no run with id {run_id!r}: check the id with `legato runs list`")
        self.run_id = run_id


class WorkflowNotFound(NotFound):
    """No workflow of that name is registered in the app that was asked."""


class RunEnded(Conflict):
    """The run has ended, so it can no longer take what was sent (a signal, a cancel)."""


class RunChanged(Conflict):
    """The run changed between looking at it and acting on it (a race was lost)."""


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


class StepInterrupted(WorkflowError):
    """A step's last allowed attempt was cut short by the death of the worker running it.

    An attempt interrupted by a worker's death (SIGKILL, OOM, a segfault, ``os._exit``)
    counts toward the step's ``Retry(max_attempts=...)``: when the replay on the next
    worker finds the attempt still marked ``running`` and the policy allows no more, the
    step fails for good with this error instead of starting again. The policy sees it like
    any failure, so ``non_retryable=(legato.StepInterrupted,)`` makes a step never start
    again after a crash. A step declared without a retry policy is started again after a
    crash (bounded by the worker's ``max_recoveries``), never failed with this error.

    Like :class:`StepTimeout`, it is the *cause* of a step's failure: the workflow sees a
    :class:`StepError` whose ``error_type`` is ``legato.errors.StepInterrupted``, so one
    ``except StepError`` handles every final step failure. It is deliberately not a
    :class:`StepError` subclass: a replay raises a recorded failure as the plain
    ``StepError`` rebuilt from the journal, and a subclass caught on the first execution
    but not on replay would make the workflow take another branch (non-determinism).
    Test ``exc.error_type`` instead.
    """


class NonDeterminismError(WorkflowError):
    """The workflow code issued a command that does not match the run's journal.

    This happens when code changes under a running workflow. The run is parked (not
    failed, not corrupted): deploy code that matches, guard the change with
    ``legato.patched(...)``, or retry the run explicitly.
    """


ERROR_TYPES = "https://serverlessworkflow.io/spec/1.0.0/errors/"
"""Prefix of the DSL's standard error types (``configuration``, ``runtime``, ...)."""


class BlueprintFault(WorkflowError):
    """A DSL error raised in a blueprint run: an RFC 7807 problem a ``try`` can catch.

    ``problem`` holds ``type``, ``status``, ``title``, ``detail`` and ``instance`` (the JSON
    pointer of the task that raised it). A run it ends reports it under ``problem``.
    """

    def __init__(self, problem: dict[str, Any]) -> None:
        title = problem.get("title") or problem.get("type")
        detail = f": {problem['detail']}" if problem.get("detail") else ""
        where = f" at {problem['instance']}" if problem.get("instance") else ""
        super().__init__(f"{title} (status {problem.get('status')}){where}{detail}")
        self.problem = dict(problem)

    @classmethod
    def standard(
        cls, kind: str, status: int, detail: str, title: str | None = None
    ) -> BlueprintFault:
        """An error of one of the DSL's standard types (``runtime``, ``timeout``, ...)."""
        return cls(
            {
                "type": ERROR_TYPES + kind,
                "status": status,
                "title": title or kind.capitalize() + " error",
                "detail": detail,
            }
        )

    @classmethod
    def expression(cls, detail: str) -> BlueprintFault:
        """A runtime expression failed while evaluating."""
        return cls.standard("expression", 400, detail, "Expression error")


class ExpressionError(BlueprintFault):
    """A runtime expression could not be compiled (validation catches these first)."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            {
                "type": ERROR_TYPES + "expression",
                "status": 400,
                "title": "Expression error",
                "detail": detail,
            }
        )


class BlueprintInvalid(InvalidInput):
    """A blueprint document failed validation; ``problems`` lists every problem found.

    Each problem reads ``file:line:column path: message``, so an editor can jump to it.
    """

    def __init__(self, problems: list[Any]) -> None:
        self.problems = list(problems)
        listed = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"the blueprint has {count} problem{'s' if count != 1 else ''}:\n{listed}")


class BlueprintNotFound(NotFound):
    """No published blueprint matches the name (and version) asked for."""


class RunFailed(LegatoError):
    """A run ended in failure (or was cancelled or parked) while a caller awaited its result."""

    http_status = 422

    def __init__(self, run_id: str, status: str, error: dict[str, Any] | None) -> None:
        detail = f" - {error.get('type')}: {error.get('message')}" if error else ""
        super().__init__(f"run {run_id!r} ended {status}{detail}")
        self.run_id = run_id
        self.status = status
        self.error = error


class StepCancelled(LegatoError):
    """Raised by :func:`legato.heartbeat` inside a step whose run was cancelled or timed
    out: the step should stop (let it propagate). ``legato.step_info().cancel_requested``
    tells the same without raising."""

    http_status = 409


class LeaseLost(BaseException):
    """This worker no longer owns the run (its lease was taken over, or a write for it
    failed): from now on every Legato command of that run raises this.

    A ``BaseException`` on purpose: a ``finally:`` or ``except Exception:`` in workflow
    code must not be able to swallow it and go on to run a cleanup step on a worker that
    another worker has replaced. Nothing is written, nothing more is executed.
    """

    def __init__(self, run_id: str) -> None:
        super().__init__(
            f"run {run_id!r} is no longer owned by this worker: it executes nothing more here"
        )
        self.run_id = run_id


def http_status(exc: BaseException) -> int:
    """The HTTP status for ``exc``: its class's ``http_status``, 500 for anything else."""
    return exc.http_status if isinstance(exc, LegatoError) else 500
