"""One run in a worker's memory: driving it to one of its ends.

A :class:`RunExecution` replays the run's workflow function against its journal on the
run's own loop (see ``run_host.py`` for the bridge to the worker's loop), runs the steps
that are new, and ends in exactly one of these ways:

* ``finished``: the workflow returned or raised; the run is completed, failed or cancelled;
* ``suspend``: the run is idle (its loop has nothing ready, no operation is pending, and
  every timer left is a durable wait's) and waits durably: it is written back as waiting
  and leaves memory, at once or after the worker's ``evict_after`` seconds of idleness;
* ``stuck``: the run is idle but waits on nothing Legato can end (an ``asyncio.Event``
  nobody sets): it is parked with a message saying where it waits;
* ``parked``: the code no longer matches the journal (non-determinism), or the run was
  recovered from dead workers more often than the worker's ``max_recoveries`` allows;
* ``lost`` / ``error``: the lease was taken over, or a store call failed; nothing more of
  the run executes here;
* ``release``: the worker stops gracefully (or the run was paused) once no step is in
  flight.

While the run is in memory, what it waits for reaches it here: timers fire on its loop,
and the worker hands it signals, child results and cancel requests (:meth:`wake`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import ChildRunError, NonDeterminismError, PayloadError, StepError
from ..outages import expected
from ..payload import dumps
from ..records import ClaimedRun, JournalEntry, NewRun, RunFailure, RunStatus, Wakeup
from ..runtime.context import TIMEOUT
from ..runtime.definitions import Workflow
from ..runtime.diagnostics import describe_error
from ..runtime.journal import MismatchHint
from .recovery import recovery_limit_error
from .run_host import RunHost

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger(__name__)

UNWIND_TURNS = 1_000
"""Loop turns a run's tasks get to unwind when it leaves memory, before they are dropped."""


class RunExecution(RunHost):
    """Drives one claimed run. See the module docstring."""

    def __init__(self, worker: Worker, claimed: ClaimedRun) -> None:
        super().__init__(worker, claimed)
        self._claimed = claimed
        self._outcome: asyncio.Future[str] = self.loop.create_future()
        self.stopping = False
        self._idle_token = 0

    # -- the run's ends ------------------------------------------------------------------
    def decide(self, outcome: str) -> None:
        if not self._outcome.done():
            self._outcome.set_result(outcome)

    def stop(self) -> None:
        """Graceful stop: in-flight steps finish and are recorded; then the run is released."""
        self.stopping = True
        self.ctx.evicting = True  # the next command of any task raises instead of running
        if self.pending == 0:
            self.decide("release")

    def after_turn(self) -> None:
        """After the run's loop ran: is the run done with this worker for now?"""
        if self._outcome.done():
            return
        if self.stopping:
            if self.pending == 0:
                self.decide("release")
            return
        root = self.ctx.root()
        if root is None or root.done():
            return  # finishing (the root's done-callback decides)
        if self.pending or self.run_loop.has_ready() or not self.run_loop.only_durable_timers():
            return
        if not self.ctx.waits:
            self.decide("stuck")
            return
        delay = self.worker.evict_after
        if delay <= 0:
            self.decide("suspend")
            return
        self._idle_token += 1
        token = self._idle_token
        self.loop.call_later(delay, self._still_idle, token)

    def _still_idle(self, token: int) -> None:
        """Evict after ``evict_after`` seconds if nothing of the run ran since."""
        quiet = not self.run_loop.has_ready() and self.pending == 0
        if token == self._idle_token and not self._outcome.done() and quiet:
            self.decide("suspend")

    def _turn(self) -> None:
        self._idle_token += 1  # activity: a pending idle eviction is off
        super()._turn()

    # -- what reaches a run in memory ------------------------------------------------------
    def wake(self, wakeup: Wakeup) -> None:
        """Signals, ended children or a cancel request arrived for this run."""
        if self._outcome.done() or self.ctx.lost:
            return
        if wakeup.cancel_requested and not self.ctx.cancel_requested:
            self.request_stop()
        for wait in list(self.ctx.waits.values()):
            if wait.signals and wakeup.signals.intersection(wait.signals):
                wait.wake()
            elif wait.child:
                entry = next((e for e in wakeup.children if e.seq == wait.seq), None)
                if entry is not None:
                    wait.wake(entry)

    def request_stop(self) -> None:
        """A cancel was requested (or the run's deadline passed): deliver it now."""
        self.ctx.cancel_requested = True
        self._deliver_stop()

    def _deliver_stop(self) -> None:
        if self.ctx.stop_pending():
            self.cancel_steps()
            self.ctx.wake_all()
        elif self.stopping and self.ctx.stop_requested():
            # Draining for a graceful stop: the steps the stop would cut short need not be
            # waited for. Nothing is recorded here; the next worker delivers the stop (and
            # runs the compensations).
            self.cancel_steps()

    def wanted(self) -> tuple[bool, list[tuple[str, str]]]:
        """(waits for signals, the child positions it waits on), for the resident check."""
        signals = any(w.signals for w in self.ctx.waits.values())
        children = [(self.run_id, seq) for seq, w in self.ctx.waits.items() if w.child]
        return signals, children

    # -- driving the run -----------------------------------------------------------------
    async def execute(self) -> None:
        try:
            await self._execute()
        except Exception as exc:
            if expected(exc):  # the database is away: the worker says so, once
                log.debug("run %s: %s; releasing it", self.run_id, exc)
                self.worker.outage.failed(exc, "runs in memory are released, to be claimed again")
            else:
                log.exception("run %s: unexpected error in the worker; releasing it", self.run_id)
            if not self.worker.killed:
                with contextlib.suppress(Exception):
                    await self.worker.store.release_run(self.lease, self.now())
        finally:
            self.cancel_timer()  # the worker's loop must not hold a run that left memory
            self.run_loop.close()
            self.worker.forget(self)

    async def _execute(self) -> None:
        store = self.worker.store
        self._log_claim()
        if self.run.recoveries > self.worker.max_recoveries:
            # Checked before any code of the run executes: running it is what kills workers.
            error = recovery_limit_error(self.run, self.ctx.journal, self.worker.max_recoveries)
            await self._end(RunStatus.PARKED, error=error)
            return
        wf = self.worker.lookup(self.run.workflow)
        if wf is None:
            await self._end(
                RunStatus.PARKED,
                error=_error(
                    "WorkflowNotRegistered",
                    f"workflow {self.run.workflow!r} is not registered in worker "
                    f"{self.worker.worker_id} (app {self.worker.app.name!r}); start the "
                    "worker with the app that defines it",
                ),
            )
            return
        self.ctx.declared_signals = wf.signals
        try:
            args, kwargs = wf.decode_args(json.loads(self.run.input or "[[], {}]"))
        except PayloadError as exc:
            await self._end(RunStatus.FAILED, error=describe_error(exc))
            return

        root = asyncio.Task(self.ctx.run_workflow(wf.fn, args, kwargs), loop=self.run_loop)
        self.ctx.bind_root(root)
        root.add_done_callback(lambda _: self.decide("finished"))
        if self.ctx.deadline is not None and not self.ctx.cancel_delivered:
            self.run_loop.durable_timer(self.ctx.deadline, self._deliver_stop)
        outcome = await self._outcome
        if outcome in ("lost", "error"):
            await self._unwind()
            if outcome == "lost" and not self.worker.killed:
                log.warning("run %s: lease lost; another worker owns it now", self.run_id)
            if outcome == "error" and not self.worker.killed:
                with contextlib.suppress(Exception):
                    await store.release_run(self.lease, self.now())
            return
        if self.stopping and not self._really_ended(root):
            await self._unwind()
            if not self.worker.killed:
                await store.release_run(self.lease, self.now())
            return
        if outcome == "suspend":
            suspension = self.ctx.suspension()  # before unwinding empties the waits
            await self._unwind()
            if self.ctx.nondeterminism is not None:
                await self._park()
                return
            if not self.worker.killed:
                await store.suspend_run(self.lease, suspension, self.now())
            return
        if outcome == "stuck":
            message = self._stuck_message()
            await self._unwind()
            await self._end(RunStatus.PARKED, error=_error("WorkflowStuck", message))
            return
        await self._unwind()  # other tasks of the run, if the workflow left any
        await self._finish(wf, root)

    async def _unwind(self) -> None:
        """Cancel the run's tasks and let them unwind on its loop (commands now raise)."""
        alive = self.ctx.cancel_tasks()
        for _ in range(UNWIND_TURNS):
            if all(task.done() for task in alive):
                break
            self.run_loop.run_turn()
            if not self.run_loop.has_ready():
                await asyncio.sleep(0)  # cancelled operations land on the worker's loop
        else:
            log.warning("run %s: some of its tasks would not stop; dropped", self.run_id)
        for task in alive:
            if task.done() and not task.cancelled():
                task.exception()
        self.ctx.retrieve_root()

    def _stuck_message(self) -> str:
        """Where the run's tasks wait, for a run that waits on nothing Legato can end."""
        places = []
        for task in list(self.ctx.tasks):
            if task.done():
                continue
            frames = _suspended_frames(task)  # outermost first, down to where it waits
            if frames:
                inner = frames[-1]
                place = f"{inner.f_code.co_qualname} ({inner.f_code.co_filename}:{inner.f_lineno})"
                user = [f for f in frames if _is_user_code(f.f_code.co_filename)]
                if user and user[-1] is not inner:
                    place += f" awaited at {user[-1].f_code.co_filename}:{user[-1].f_lineno}"
                places.append(place)
        where = "; ".join(places) or "unknown"
        return (
            f"run {self.run_id} ({self.run.workflow}) waits on something Legato cannot end: "
            f"no step, timer, signal or child is pending, so it would wait for ever. Its tasks "
            f"wait at: {where}. An asyncio.Event, Queue, Lock or Future inside a workflow is "
            "only set by the workflow's own tasks; to wait for the outside world use "
            "legato.wait_for_signal, legato.sleep or legato.wait_any. Fix the code, then "
            "`legato runs retry` the run."
        )

    def _really_ended(self, root: asyncio.Task[Any]) -> bool:
        """The workflow itself returned or raised (not cut short by eviction)."""
        if not root.done():
            return False
        if self.ctx.rollback_interrupted:
            return False  # stopped mid-rollback: the next worker resumes the rollback
        if root.cancelled() or isinstance(root.exception(), asyncio.CancelledError):
            return self.ctx.cancel_delivered
        return True

    async def _finish(self, wf: Workflow[Any, Any], root: asyncio.Task[Any]) -> None:
        if self.ctx.nondeterminism is not None:
            await self._park()
            return
        exc = None if root.cancelled() else root.exception()
        if root.cancelled() or isinstance(exc, asyncio.CancelledError):
            if not self.ctx.cancel_delivered:
                return
            if self.ctx.cancel_reason == TIMEOUT:
                timeout = _error("RunTimeout", "the run did not end before its timeout")
                await self._end(RunStatus.FAILED, error=self._with_compensations(timeout))
                return
            cancelled = _error("Cancelled", "run cancelled")
            await self._end(RunStatus.CANCELLED, error=self._with_compensations(cancelled))
            return
        if exc is not None:
            error = self._with_compensations(_with_origin(describe_error(exc), exc))
            await self._end(RunStatus.FAILED, error=error)
            return
        leftover = self.ctx.unvisited()
        if leftover:
            first = leftover[0]
            hint = self.ctx.mismatch_hint
            self.ctx.nondeterminism = _nondeterminism(self.run_id, wf.name, first, hint)
            await self._park()
            return
        try:
            output = dumps(root.result(), f"result of workflow {wf.name!r}")
        except PayloadError as unstorable:
            await self._end(RunStatus.FAILED, error=describe_error(unstorable))
            return
        await self._end(RunStatus.COMPLETED, output=output)

    async def _start_failure_handler(self, error: str | None) -> None:
        """Start the workflow's ``on_failure`` run (before the run is marked failed).

        Its id is derived from the run's, so a crash between the two writes and the replay
        that follows start it once; a redriven run that fails again alerts again.
        """
        wf = self.worker.lookup(self.run.workflow)
        handler = wf.on_failure if wf is not None else None
        if handler is None:
            return
        described = json.loads(error) if error else {}
        failure = RunFailure(
            run_id=self.run_id,
            workflow=self.run.workflow,
            error_type=described.get("type", "Error"),
            message=described.get("message", ""),
            traceback=described.get("traceback"),
            step=described.get("failed_step"),
            seq=described.get("failed_seq"),
            step_error=described.get("step_error"),
            input=json.loads(self.run.input) if self.run.input else None,
            redrives=self.run.redrives,
        )
        suffix = f"~{self.run.redrives}" if self.run.redrives else ""
        new = NewRun(
            run_id=f"{self.run_id}:on_failure{suffix}",
            workflow=handler.name,
            input=json.dumps(handler.encode_args((failure,), {}), separators=(",", ":")),
            version=handler.version,
            queue=handler.queue,
        )
        await self.worker.store.create_run(new, self.now())

    async def _park(self) -> None:
        error = self.ctx.nondeterminism
        assert error is not None
        await self._end(RunStatus.PARKED, error=_error("NonDeterminismError", str(error)))

    def _with_compensations(self, error: str) -> str:
        """The run's error, with which compensations ran and how they ended."""
        if not self.ctx.compensations:
            return error
        described = json.loads(error)
        described["compensations"] = self.ctx.compensations
        return json.dumps(described)

    async def _end(
        self, status: RunStatus, output: str | None = None, error: str | None = None
    ) -> None:
        if self.worker.killed or self.ctx.lost:
            return
        store = self.worker.store
        if status is RunStatus.FAILED:
            await self._start_failure_handler(error)
        if status.is_terminal and self.ctx.has_children():
            await store.cancel_children(self.run_id, self.now())
        held = await store.finish_run(self.lease, status, output, error, self.now())
        if not held:
            log.warning("run %s: lease lost before it could be marked %s", self.run_id, status)
            return
        self._log_end(status, error)

    # -- what the worker logs about the run ------------------------------------------------
    def _log_claim(self) -> None:
        """One record per claim: the run taken over from a worker that died or stalled,
        started for the first time, or resumed (after a wait, a release or a retry)."""
        where = f"run {self.run_id} ({self.run.workflow})"
        fields = self.log_fields()
        if self._claimed.taken_over and self._claimed.previous_owner == self.worker_id:
            # Its own lease ran out (the database was away): the outage is logged once
            # by the worker; claiming the run again is routine.
            log.info(
                "%s claimed again by worker %s: its lease expired while it could not renew "
                "it (recovery %d)",
                where,
                self.worker_id,
                self.run.recoveries,
                extra=fields,
            )
        elif self._claimed.taken_over:
            log.warning(
                "%s taken over by worker %s from worker %s, whose lease expired (recovery %d)",
                where,
                self.worker_id,
                self._claimed.previous_owner or "unknown",
                self.run.recoveries,
                extra=fields,
            )
        elif not self.ctx.journal:
            log.info("%s started on worker %s", where, self.worker_id, extra=fields)
        else:
            log.info("%s resumed on worker %s", where, self.worker_id, extra=fields)

    def _log_end(self, status: RunStatus, error: str | None) -> None:
        where = f"run {self.run_id} ({self.run.workflow})"
        fields = self.log_fields()
        message = _message_of(error)
        if status is RunStatus.COMPLETED:
            log.info("%s completed on worker %s", where, self.worker_id, extra=fields)
        elif status is RunStatus.FAILED:
            log.warning("%s failed on worker %s: %s", where, self.worker_id, message, extra=fields)
        elif status is RunStatus.CANCELLED:
            log.info("%s cancelled on worker %s", where, self.worker_id, extra=fields)
        elif status is RunStatus.PARKED:
            log.error("%s parked on worker %s: %s", where, self.worker_id, message, extra=fields)


def _message_of(error: str | None) -> str:
    """The message of a stored error (JSON), for a log line."""
    if not error:
        return "no error recorded"
    try:
        described = json.loads(error)
    except ValueError:
        return error
    kind, text = described.get("type", "Error"), described.get("message", "")
    step = described.get("failed_step")
    return f"{kind}: {text}" + (f" (in step {step!r})" if step else "")


def _with_origin(error: str, exc: BaseException) -> str:
    """Add which step (or child) raised the error that ended the run, if one did.

    ``legato runs retry`` re-runs exactly that position; the on_failure handler names it.
    The error is followed through ``raise ... from`` and implicit chaining, so a workflow
    that wraps a step's failure in its own exception still points at the step.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, StepError | ChildRunError) and cause.seq:
            described = json.loads(error)
            described["failed_seq"] = cause.seq
            if isinstance(cause, StepError):
                described["failed_step"] = cause.step
                described["step_error"] = {
                    "type": cause.error_type,
                    "message": cause.error_message,
                    "attempts": cause.attempts,
                }
            else:
                described["failed_step"] = f"child {cause.run_id}"
                described["step_error"] = cause.error
            return json.dumps(described)
        cause = cause.__cause__ or cause.__context__
    return error


def _suspended_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """The frames of a suspended task, following what each coroutine awaits."""
    frames: list[FrameType] = []
    awaited: Any = task.get_coro()
    while awaited is not None and len(frames) < 100:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
        if frame is None:
            break
        frames.append(frame)
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
    return frames


def _is_user_code(filename: str) -> bool:
    """Not asyncio's, not Legato's: where the workflow's author can look."""
    return not filename.startswith((_ASYNCIO_DIR, _LEGATO_DIR))


_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)
_LEGATO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _error(kind: str, message: str) -> str:
    return json.dumps({"type": kind, "message": message})


def _nondeterminism(
    run_id: str, workflow: str, entry: JournalEntry, hint: MismatchHint | None = None
) -> NonDeterminismError:
    if hint is not None:  # nothing was issued in the entry's place: the name is ""
        return NonDeterminismError(hint(entry.seq, entry, entry.kind, ""))
    return NonDeterminismError(
        f"run {run_id} ({workflow}): the journal has {entry.kind.value} {entry.name!r} at "
        f"position {entry.seq}, which the code no longer reaches. The workflow code changed "
        "under a running workflow: deploy code that matches, or guard the change with "
        "legato.patched(...). The run is parked until then."
    )
