"""One run in a worker's memory: the host side of the runtime context.

A :class:`RunExecution` replays the run's workflow function against its journal, runs the
steps that are new, and ends in exactly one of four ways:

* ``finished``: the workflow returned or raised; the run is completed, failed or cancelled;
* ``suspended``: every task of the run waits on a timer, signal or child and no step is in
  flight; the run is written back as waiting and leaves memory;
* ``parked``: the code no longer matches the journal (non-determinism);
* ``lost``: the lease was taken over, or the worker stops; nothing more is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ChildRunError, PayloadError, StepError, StepTimeout
from ..payload import dumps
from ..records import (
    ClaimedRun,
    EntryKind,
    JournalEntry,
    NewRun,
    RunFailure,
    RunStatus,
    SignalRecord,
)
from ..runtime.context import TIMEOUT, WorkflowContext
from ..runtime.definitions import Step, Workflow, lookup
from ..runtime.diagnostics import describe_error
from ..runtime.host import StepInfo, step_info_var
from ..store.base import Lease
from .isolation import run_in_child_process
from .services import current_store

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger(__name__)


class RunExecution:
    """Drives one claimed run; implements :class:`legato.runtime.context.RuntimeHost`."""

    def __init__(self, worker: Worker, claimed: ClaimedRun) -> None:
        self.worker = worker
        self.run = claimed.run
        self.lease = Lease(claimed.run.run_id, worker.worker_id, claimed.run.lease_epoch)
        # Signals buffered when the run was claimed. While this worker holds the lease
        # nobody else consumes them, so waits can take them without a round trip.
        self.buffered = list(claimed.signals)
        self.ctx = WorkflowContext(
            run_id=claimed.run.run_id,
            workflow_name=claimed.run.workflow,
            journal=claimed.journal,
            host=self,
            cancel_requested=claimed.run.cancel_requested,
            deadline=claimed.run.deadline_at,
            redrives=claimed.run.redrives,
        )
        self._outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._checking = False
        self._confirming = False
        self.stopping = False

    @property
    def run_id(self) -> str:
        return self.run.run_id

    # -- RuntimeHost ---------------------------------------------------------------------
    def now(self) -> float:
        return self.worker.clock.now()

    async def _io(self, start: Callable[[], Awaitable[Any]]) -> Any:
        """Await store I/O, counted as in-flight work so the run is not seen as idle."""
        if self.worker.killed:
            raise asyncio.CancelledError("worker killed")
        self.ctx.inflight += 1
        try:
            return await start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A store failure is not the workflow's fault: never let it reach workflow code
            # (it could fail the run). Leave memory; the run is retried from its journal.
            log.error("run %s: store call failed (%s); releasing the run", self.run_id, exc)
            self._decide("error")
            raise asyncio.CancelledError("store call failed") from exc
        finally:
            self.ctx.inflight -= 1
            self.on_blocked()

    async def persist(self, entries: Sequence[JournalEntry]) -> None:
        if not await self._io(lambda: self.worker.store.record(self.lease, entries)):
            self._decide("lost")
            raise asyncio.CancelledError("lease lost")

    def persist_nowait(self, entries: Sequence[JournalEntry]) -> None:
        if not self.worker.killed:
            self.worker.store.record_nowait(self.lease, entries, self._write_failed)

    def persist_later(self, entries: Sequence[JournalEntry], delay: float) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, self.persist_nowait, entries)

    def _write_failed(self, exc: BaseException | None) -> None:
        """A queued write was fenced (None) or failed: this copy of the run must stop."""
        if exc is not None:
            log.error("run %s: a queued write failed (%s); releasing the run", self.run_id, exc)
            self._decide("error")
        else:
            self._decide("lost")

    async def execute_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], info: StepInfo
    ) -> Any:
        if self.worker.killed:
            raise asyncio.CancelledError("worker killed")
        context = contextvars.copy_context()
        context.run(step_info_var.set, info)
        context.run(current_store.set, self.worker.store)
        pending: asyncio.Future[Any]
        if step.is_async:
            # Created directly, not via loop.create_task, so the workflow's task numbering
            # (see runtime.context.task_factory) never counts step bodies.
            coro: Any = step.fn(*args, **kwargs)
            pending = asyncio.Task(coro, context=context)
        elif step.kill_on_timeout:
            # A Task of its own (not loop.create_task): it must not count as a workflow task.
            child = run_in_child_process(step.fn, args, kwargs)
            pending = asyncio.Task(child, context=context)
        else:
            call = functools.partial(context.run, step.fn, *args, **kwargs)
            pending = asyncio.get_running_loop().run_in_executor(self.worker.pool, call)
        return await watch_attempt(pending, step, info)

    async def backoff(self, delay: float) -> None:
        await self._io(lambda: asyncio.sleep(delay))

    async def take_signal(
        self,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> SignalRecord | None:
        known = next((sig for sig in self.buffered if sig.name in names), None)
        if known is not None:
            # The oldest matching signal, as the store would pick it. Its consumption is
            # queued with the run's next write: if that is lost in a crash, the replay
            # takes the same signal again, so nothing depends on waiting for it here.
            self.buffered.remove(known)
            if not self.worker.killed:
                self.worker.store.consume_signal_nowait(
                    self.lease, known, on_signal(known), self._write_failed
                )
            return known
        held, signal = await self._io(
            lambda: self.worker.store.take_signal(self.lease, waiting, names, on_signal)
        )
        if not held:
            self._decide("lost")
            raise asyncio.CancelledError("lease lost")
        return signal  # type: ignore[no-any-return]

    async def start_child(self, entry: JournalEntry, child: NewRun) -> JournalEntry:
        stored = await self._io(
            lambda: self.worker.store.start_child(self.lease, entry, child, self.now())
        )
        if stored is None:
            self._decide("lost")
            raise asyncio.CancelledError("lease lost")
        return stored  # type: ignore[no-any-return]

    def on_blocked(self) -> None:
        if self.stopping:
            if self.ctx.inflight == 0:
                self._decide("release")
            return
        if not self._checking and not self._outcome.done() and self.ctx.waits:
            self._checking = True
            asyncio.get_running_loop().call_soon(self._check_idle)

    def _check_idle(self) -> None:
        """Suspend the run if every task waits durably, on two loop turns in a row.

        One turn is not enough: a task that just ended has its done-callbacks (say, the
        gather awaiting it) scheduled but not run yet, so for one turn the run can look
        idle while it is about to move.
        """
        if self._outcome.done() or not self.ctx.is_idle():
            self._checking = False
            self._confirming = False
            return
        if not self._confirming:
            self._confirming = True
            asyncio.get_running_loop().call_soon(self._check_idle)
            return
        self._checking = False
        self._confirming = False
        self._decide("suspend")

    # -- driving the run -----------------------------------------------------------------
    def _decide(self, outcome: str) -> None:
        if not self._outcome.done():
            self._outcome.set_result(outcome)

    def lose(self) -> None:
        """The lease is gone (or the worker is killed): stop without writing."""
        self._decide("lost")

    def stop(self) -> None:
        """Graceful stop: in-flight steps finish and are recorded; then the run is released."""
        self.stopping = True
        self.ctx.evicting = True  # the next command of any task raises instead of running
        if self.ctx.inflight == 0:
            self._decide("release")

    async def execute(self) -> None:
        try:
            await self._execute()
        except Exception:
            log.exception("run %s: unexpected error in the worker; releasing it", self.run_id)
            if not self.worker.killed:
                with contextlib.suppress(Exception):
                    await self.worker.store.release_run(self.lease, self.now())
        finally:
            self.worker.forget(self)

    async def _execute(self) -> None:
        store = self.worker.store
        wf = self.worker.workflows.get(self.run.workflow) or lookup(self.run.workflow)
        if wf is None:
            await self._end(
                RunStatus.PARKED,
                error=_error(
                    "WorkflowNotRegistered",
                    f"workflow {self.run.workflow!r} is not registered in worker "
                    f"{self.worker.worker_id}; start the worker with the app that defines it",
                ),
            )
            return
        try:
            args, kwargs = wf.decode_args(json.loads(self.run.input or "[[], {}]"))
        except PayloadError as exc:
            await self._end(RunStatus.FAILED, error=describe_error(exc))
            return

        root = asyncio.Task(self.ctx.run_workflow(wf.fn, args, kwargs))
        self.ctx.bind_root(root)
        root.add_done_callback(lambda _: self._decide("finished"))
        outcome = await self._outcome
        if outcome != "lost" and self.stopping and not self._really_ended(root):
            await self.ctx.teardown()
            if not self.worker.killed:
                await store.release_run(self.lease, self.now())
            return
        if outcome == "error":
            await self.ctx.teardown()
            with contextlib.suppress(Exception):
                await store.release_run(self.lease, self.now())
            return
        if outcome == "lost":
            await self.ctx.teardown()
            if not self.worker.killed:
                log.warning("run %s: lease lost; another worker owns it now", self.run_id)
            return
        if outcome == "suspend":
            suspension = self.ctx.suspension()  # before teardown empties the waits
            await self.ctx.teardown()
            if self.ctx.nondeterminism is not None:
                await self._park()
                return
            await store.suspend_run(self.lease, suspension, self.now())
            return
        await self.ctx.teardown()  # other tasks of the run, if the workflow left any
        await self._finish(wf, root)

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
        wf = self.worker.workflows.get(self.run.workflow) or lookup(self.run.workflow)
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
        log.error("run %s parked: %s", self.run_id, error)
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
        if self.worker.killed:
            return
        store = self.worker.store
        if status is RunStatus.FAILED:
            await self._start_failure_handler(error)
        if status.is_terminal and self.ctx.has_children():
            await store.cancel_children(self.run_id, self.now())
        held = await store.finish_run(self.lease, status, output, error, self.now())
        if not held:
            log.warning("run %s: lease lost before it could be marked %s", self.run_id, status)


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


def _error(kind: str, message: str) -> str:
    return json.dumps({"type": kind, "message": message})


def _nondeterminism(
    run_id: str,
    workflow: str,
    entry: JournalEntry,
    hint: Callable[[str, JournalEntry, EntryKind, str], str] | None = None,
) -> Any:
    from ..errors import NonDeterminismError

    if hint is not None:  # nothing was issued in the entry's place: the name is ""
        return NonDeterminismError(hint(entry.seq, entry, entry.kind, ""))
    return NonDeterminismError(
        f"run {run_id} ({workflow}): the journal has {entry.kind.value} {entry.name!r} at "
        f"position {entry.seq}, which the code no longer reaches. The workflow code changed "
        "under a running workflow: deploy code that matches, or guard the change with "
        "legato.patched(...). The run is parked until then."
    )


async def watch_attempt(pending: asyncio.Future[Any], step: Step[Any, Any], info: StepInfo) -> Any:
    """Await one attempt, failing it with StepTimeout past its timeout or heartbeat timeout.

    A sync step's thread cannot be stopped: it is left to finish, its result ignored.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    channel = info.channel
    while True:
        waits = []
        if step.timeout is not None:
            waits.append(started + step.timeout - loop.time())
        if step.heartbeat_timeout is not None and channel is not None:
            quiet = time.monotonic() - channel.last_beat
            waits.append(step.heartbeat_timeout - quiet)
        if not waits:
            return await pending
        wait = min(waits)
        if wait > 0:
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if done:
                return pending.result()
            continue  # woke at a deadline: look again (a heartbeat may have moved it)
        pending.cancel()
        # Let a cancelled coroutine (or a killed step process) wind down before moving on,
        # but never wait long for a step that ignores its cancellation.
        await asyncio.wait({pending}, timeout=5)
        if step.timeout is not None and loop.time() >= started + step.timeout:
            raise StepTimeout(
                f"step {step.name!r} (attempt {info.attempt}) did not finish within "
                f"{step.timeout:g}s"
            )
        raise StepTimeout(
            f"step {step.name!r} (attempt {info.attempt}) sent no heartbeat for "
            f"{step.heartbeat_timeout:g}s"
        )
