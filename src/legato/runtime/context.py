"""The workflow context: journal, replay and the commands a workflow issues.

No I/O happens here. A :class:`RuntimeHost` (the worker) persists entries, runs step
functions and starts children; this module decides *what* to do by comparing each command
with the run's journal:

* every command gets a position ``seq`` from the task that issues it (see
  :func:`task_factory`), so positions do not depend on which parallel step finished first;
* a command found in the journal is replayed (its recorded result is returned, nothing
  runs); one that does not match the journal is non-determinism and parks the run;
* a command past the end of the journal is executed and recorded;
* a wait that cannot be satisfied blocks; when every task of the run is blocked and no
  step is in flight, the host evicts the run from memory until the wait can end.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import (
    ChildRunError,
    NonDeterminismError,
    PayloadError,
    StepError,
    WaitTimeout,
)
from ..payload import dumps, from_jsonable, loads, to_jsonable
from ..records import (
    EntryKind,
    EntryStatus,
    JournalEntry,
    NewRun,
    SignalRecord,
    Suspension,
)
from .diagnostics import caller_location, describe_error
from .host import RUNNING_MARK_DELAY, HeartbeatChannel, RuntimeHost, StepInfo
from .retry import NO_RETRY, Retry
from .tasks import TaskState, task_states

if TYPE_CHECKING:
    from .definitions import Step, Workflow


DURABLE_BACKOFF = 2.0
"""Back-offs at least this long (seconds) are durable timers: the run leaves memory."""

ROLLBACK = "rollback"
"""The name of the journal entry that records a compensation plan."""

TIMEOUT = "timeout"
"""The reason recorded when a run is stopped by its own timeout rather than a cancel."""


@dataclass(frozen=True)
class _Compensable:
    """A completed step that declared a compensation, as the code called it."""

    seq: str
    step: Step[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    ended_at: float


def seq_key(seq: str) -> tuple[int, ...]:
    """Order positions numerically: "10" after "9", "3.2" after "3"."""
    return tuple(int(part) for part in seq.split("."))


@dataclass
class _Wait:
    deadline: float | None
    signals: tuple[str, ...] = ()
    child: bool = False


@dataclass(frozen=True, slots=True)
class WaitResult:
    """Which condition of :func:`legato.wait_any` fired first, and its value."""

    index: int
    name: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition for :func:`legato.wait_any`: a signal by name or a timer."""

    kind: str  # "signal" | "timer"
    name: str
    seconds: float = 0.0


@dataclass
class WorkflowContext:
    """State of one run while it is in a worker's memory."""

    run_id: str
    workflow_name: str
    journal: dict[str, JournalEntry]
    host: RuntimeHost
    cancel_requested: bool = False
    tasks: weakref.WeakSet[asyncio.Task[Any]] = field(default_factory=weakref.WeakSet)
    visited: set[str] = field(default_factory=set)
    waits: dict[str, _Wait] = field(default_factory=dict)
    block_futures: set[asyncio.Future[None]] = field(default_factory=set)
    joins: set[asyncio.Future[int]] = field(default_factory=set)  # see first_done
    abandoned: set[str] = field(default_factory=set)  # prefixes of tasks it cancelled
    inflight: int = 0
    evicting: bool = False
    cancel_delivered: bool = False
    nondeterminism: NonDeterminismError | None = None
    deadline: float | None = None  # the run's timeout, as a time
    cancel_reason: str = "cancel"  # or TIMEOUT once the deadline was delivered
    redrives: int = 0  # new children of a redriven run get fresh ids
    compensable: list[_Compensable] = field(default_factory=list)
    compensations: list[dict[str, Any]] = field(default_factory=list)
    started_children: bool = False
    compensating: bool = False  # a rollback is under way: no cancel or timeout stops it
    rollback_interrupted: bool = False  # the worker stopped mid-rollback: not an ending
    # Weak: the task's TaskState (held by a WeakKeyDictionary keyed by the task) refers to
    # this context, so a strong reference back would keep every finished run alive.
    root_ref: weakref.ref[asyncio.Task[Any]] | None = None
    # Set by a workflow that speaks of itself in other terms (the blueprint interpreter):
    # (seq, recorded entry, issued kind, issued name) -> the whole non-determinism message;
    # the name is "" for an entry the run ended without reaching (worker/execution.py).
    mismatch_hint: Callable[[str, JournalEntry, EntryKind, str], str] | None = None

    # -- positions and replay ------------------------------------------------------------
    def bind_root(self, task: asyncio.Task[Any]) -> None:
        """Make ``task`` the run's main task (prefix ``""``)."""
        task_states[task] = TaskState(self, "")
        self.tasks.add(task)
        self.root_ref = weakref.ref(task)

    def task_done(self, task: asyncio.Task[Any]) -> None:
        """A task of the run ended: the rest of the run may now be idle.

        A task the workflow cancelled (a losing branch of a race, the siblings of a failed
        branch) may have journalled more before its cancel than it reaches on replay,
        where the cancel can come sooner: its positions are not owed on replay.
        """
        if task.cancelled() and not self.evicting:
            state = task_states.get(task)
            if state is not None and state.prefix:
                self.abandoned.add(state.prefix)
        if self.host is not None:
            self.host.on_blocked()

    def is_idle(self) -> bool:
        """True when no step or store call is in flight and every live task of the run
        waits durably (in ``_block``) or on other tasks of the run (``gather``, ``await task``).

        A task that is ready to run, or waits on anything else (``asyncio.sleep``, a queue),
        keeps the run in memory.
        """
        if self.inflight or not self.waits:
            return False
        root = self.root_ref() if self.root_ref is not None else None
        if root is not None and root.done():
            return False  # the workflow has ended; the run finishes, it does not wait
        return self.tasks_parked()

    async def run_workflow(
        self, fn: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]
    ) -> Any:
        """The run's main coroutine: the workflow, then its rollback if it failed or was
        cancelled (journalled, so a crash or a replay resumes it rather than repeating it)."""
        try:
            return await fn(*args, **kwargs)
        except BaseException as exc:
            if self.should_compensate(exc):
                await self.compensate()
            raise

    async def teardown(self) -> None:
        """Cancel every task of the run still alive; no command may run any more."""
        self.evicting = True
        alive = [t for t in list(self.tasks) if not t.done()]
        for task in alive:
            task.cancel()
        if alive:
            await asyncio.gather(*alive, return_exceptions=True)
        root = self.root_ref() if self.root_ref is not None else None
        if root is not None and root.done() and not root.cancelled():
            root.exception()  # mark retrieved

    def tasks_parked(self, also: Collection[asyncio.Future[Any]] = ()) -> bool:
        """Every live task waits in ``_block``, on a future in ``also``, or on run tasks."""
        for task in list(self.tasks):
            if task.done():
                continue
            waiter = getattr(task, "_fut_waiter", None)  # what the task awaits now
            if waiter is None or waiter.done():
                return False  # ready to run, or woken and about to
            if waiter in self.block_futures or waiter in self.joins or waiter in also:
                continue
            if isinstance(waiter, asyncio.Task) and waiter in self.tasks:
                continue
            children = getattr(waiter, "_children", None)  # asyncio.gather's future
            if children is not None and all(c.done() or c in self.tasks for c in children):
                continue
            return False
        return True

    def _state(self) -> TaskState:
        task = asyncio.current_task()
        state = task_states.get(task) if task is not None else None
        if state is None or state.ctx is not self:
            raise RuntimeError("Legato command issued outside its workflow's tasks")
        return state

    def _next_seq(self) -> str:
        state = self._state()
        state.counter += 1
        return f"{state.prefix}{state.counter}"

    def _guard(self) -> None:
        if self.evicting:
            raise asyncio.CancelledError("run is leaving this worker's memory")
        if self.nondeterminism is not None:
            raise self.nondeterminism

    def _expect(self, seq: str, kind: EntryKind, name: str) -> JournalEntry | None:
        """The journal entry at ``seq`` if it matches the command; None past the journal."""
        self._guard()
        self.visited.add(seq)
        entry = self.journal.get(seq)
        if entry is None:
            return None
        if entry.kind is EntryKind.CANCEL or entry.status is EntryStatus.CANCELLED:
            self.cancel_delivered = True
            timed_out = entry.name == TIMEOUT or (entry.error_dict() or {}).get("type") == TIMEOUT
            self.cancel_reason = TIMEOUT if timed_out else "cancel"
            raise asyncio.CancelledError(f"run {self.run_id} was {self._stopped_how()}")
        if entry.kind is not kind or entry.name != name:
            self.nondeterminism = NonDeterminismError(
                f"run {self.run_id} ({self.workflow_name}): at position {seq} the journal "
                f"recorded {entry.kind.value} {entry.name!r}, but the code now issues "
                f"{kind.value} {name!r} at {caller_location()}. The workflow code changed "
                "under a running workflow: deploy code that matches, or guard the change "
                "with legato.patched(...). The run is parked until then."
            )
            if self.mismatch_hint is not None:
                message = self.mismatch_hint(seq, entry, kind, name)
                self.nondeterminism = NonDeterminismError(message)
            raise self.nondeterminism
        return entry

    def _stop_due(self) -> bool:
        """A cancel was asked for, or the run's timeout passed, and the code has not seen it.

        Never while compensating: a rollback that stopped half-way would be worse than none.
        """
        if self.cancel_delivered or self.compensating:
            return False
        if self.cancel_requested:
            self.cancel_reason = "cancel"
            return True
        if self.deadline is not None and self.host.now() >= self.deadline:
            self.cancel_reason = TIMEOUT
            return True
        return False

    def _stopped_how(self) -> str:
        return "stopped by its timeout" if self.cancel_reason == TIMEOUT else "cancelled"

    async def _deliver_cancel(self, seq: str) -> None:
        """At the frontier of a run asked to stop: record where and why, then raise."""
        if self._stop_due():
            self.cancel_delivered = True
            now = self.host.now()
            await self.host.persist(
                [
                    JournalEntry(
                        self.run_id,
                        seq,
                        EntryKind.CANCEL,
                        self.cancel_reason,
                        EntryStatus.COMPLETED,
                        started_at=now,
                        ended_at=now,
                    )
                ]
            )
            raise asyncio.CancelledError(f"run {self.run_id} was {self._stopped_how()}")

    def has_children(self) -> bool:
        """Did this run start child runs (or routed steps)? Only then is there any to cancel."""
        return self.started_children or any(e.child_run_id for e in self.journal.values())

    def unvisited(self) -> list[JournalEntry]:
        """Journal entries the code never reached (after a successful end: non-determinism)."""
        return [
            e
            for seq, e in self.journal.items()
            if seq not in self.visited
            and e.kind is not EntryKind.PATCH
            and not any(seq.startswith(prefix) for prefix in self.abandoned)
        ]

    # -- steps ---------------------------------------------------------------------------
    async def run_step(
        self,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        route: bool = True,
        kind: EntryKind = EntryKind.STEP,
    ) -> Any:
        seq = self._next_seq()
        entry = self._expect(seq, kind, step.name)
        if route and step.queue is not None:
            value = await self._routed_step(step, args, kwargs, seq, entry)
            self._completed(seq, step, args, kwargs, value, self.host.now())
            return value
        if entry is not None:
            if entry.status is EntryStatus.COMPLETED:
                value = loads(entry.output, step.return_annotation, f"result of step {step.name}")
                self._completed(seq, step, args, kwargs, value, entry.ended_at or 0.0)
                return value
            if entry.status is EntryStatus.FAILED:
                err = entry.error_dict() or {}
                raise StepError(
                    step.name,
                    err.get("type", "Error"),
                    err.get("message", ""),
                    entry.attempts,
                    seq,
                )
        else:
            await self._deliver_cancel(seq)
        return await self._attempts(step, args, kwargs, seq, kind, entry)

    async def _attempts(
        self,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        seq: str,
        kind: EntryKind,
        entry: JournalEntry | None,
    ) -> Any:
        """Run the step's attempts from where the journal left off, recording each one."""
        attempt = entry.attempts if entry is not None else 0
        history = entry.attempt_list() if entry is not None else []
        started = entry.started_at if entry is not None and entry.started_at else self.host.now()
        details = json.loads(entry.progress) if entry is not None and entry.progress else None
        input_json = None if entry is not None else _encode_call(step.name, args, kwargs)
        if entry is not None and entry.status is EntryStatus.RUNNING:
            history.append(
                {
                    "attempt": attempt,
                    "started_at": entry.started_at,
                    "ended_at": None,
                    "error": {"type": "Interrupted", "message": "the worker stopped mid-attempt"},
                }
            )
        if entry is not None and entry.status is EntryStatus.WAITING and entry.wake_at:
            await self._backoff_until(entry)  # a durable back-off between attempts
        self.inflight += 1
        try:
            while True:
                attempt += 1
                attempt_started = self.host.now()
                running = JournalEntry(
                    self.run_id,
                    seq,
                    kind,
                    step.name,
                    EntryStatus.RUNNING,
                    attempts=attempt,
                    input=input_json,
                    started_at=started,
                    attempt_log=json.dumps(history) if history else None,
                )
                # Most steps finish in well under RUNNING_MARK_DELAY: writing "running" only for
                # the slow ones halves the writes of a fast step and shows every slow one.
                mark = self.host.persist_later([running], RUNNING_MARK_DELAY)
                channel = HeartbeatChannel(
                    asyncio.get_running_loop(),
                    lambda d, r=running: self.host.persist_nowait(  # type: ignore[misc]
                        [replace(r, progress=dumps(d, f"heartbeat details of {step.name!r}"))]
                    ),
                )
                info = StepInfo(self.run_id, seq, step.name, attempt, details, channel)
                try:
                    value = await self.host.execute_step(step, args, kwargs, info)
                    jsonable = to_jsonable(value, f"result of step {step.name!r}")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    channel.close()
                    mark.cancel()
                    now = self.host.now()
                    history.append(_attempt_record(attempt, attempt_started, now, exc))
                    if channel.details is not None:  # the next attempt resumes from here
                        details = channel.details
                    failed = replace(
                        running,
                        error=describe_error(exc),
                        attempt_log=json.dumps(history),
                        progress=dumps(details, "heartbeat details") if details else None,
                    )
                    retry = step.retry
                    if not isinstance(exc, PayloadError) and retry.should_retry(exc, attempt):
                        delay = retry.delay(attempt)
                        if delay >= DURABLE_BACKOFF:
                            waiting = replace(
                                failed, status=EntryStatus.WAITING, wake_at=now + delay
                            )
                            await self.host.persist([waiting])
                            self.inflight -= 1
                            try:
                                await self._backoff_until(waiting)
                            finally:
                                self.inflight += 1
                        else:
                            self.host.persist_nowait([failed])
                            await self.host.backoff(delay)
                        continue
                    final = replace(failed, status=EntryStatus.FAILED, ended_at=now)
                    await self.host.persist([final])
                    raise StepError(
                        step.name,
                        f"{type(exc).__module__}.{type(exc).__qualname__}",
                        str(exc),
                        attempt,
                        seq,
                    ) from exc
                channel.close()
                mark.cancel()
                now = self.host.now()
                if history:
                    history.append(_attempt_record(attempt, attempt_started, now, None))
                await self.host.persist(
                    [
                        replace(
                            running,
                            status=EntryStatus.COMPLETED,
                            output=json.dumps(jsonable, separators=(",", ":")),
                            ended_at=now,
                            attempt_log=json.dumps(history) if history else None,
                        )
                    ]
                )
                value = from_jsonable(jsonable, step.return_annotation, f"result of {step.name}")
                self._completed(seq, step, args, kwargs, value, now)
                return value
        finally:
            self.inflight -= 1
            self.host.on_blocked()

    async def _backoff_until(self, entry: JournalEntry) -> None:
        """Wait out a durable back-off; returns at once if it is over."""
        assert entry.wake_at is not None
        if self.host.now() < entry.wake_at:
            await self._block(entry, _Wait(entry.wake_at))

    # -- compensation (saga) ---------------------------------------------------------------
    def _completed(
        self,
        seq: str,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        value: Any,
        ended_at: float,
    ) -> None:
        if step.compensation is not None:
            self.compensable.append(_Compensable(seq, step, args, kwargs, value, ended_at))

    def should_compensate(self, exc: BaseException) -> bool:
        """The workflow itself failed or was cancelled (not evicted, not non-deterministic)."""
        if self.evicting or self.nondeterminism is not None or not self.compensable:
            return False
        return self.cancel_delivered or not isinstance(exc, asyncio.CancelledError)

    async def compensate(self) -> None:
        """Undo completed steps, newest first, each as a journalled step with its retries.

        A compensation that fails for good is recorded and the others still run: leaving
        the rest undone would be worse. The outcomes go into the run's error.

        The plan (which steps, in which order) is journalled first: parallel branches may
        complete more steps while the rollback runs, and a replay must undo exactly the
        steps the first execution chose, in the same order.
        """
        self.compensating = True
        try:
            seq = self._next_seq()
            entry = self._expect(seq, EntryKind.COMPENSATE, ROLLBACK)
            if entry is None:
                chosen = sorted(
                    self.compensable, key=lambda c: (c.ended_at, seq_key(c.seq)), reverse=True
                )
                plan = [c.seq for c in chosen]
                now = self.host.now()
                await self.host.persist(
                    [
                        JournalEntry(
                            self.run_id,
                            seq,
                            EntryKind.COMPENSATE,
                            ROLLBACK,
                            EntryStatus.COMPLETED,
                            output=json.dumps(plan),
                            started_at=now,
                            ended_at=now,
                        )
                    ]
                )
            else:
                plan = json.loads(entry.output or "[]")
                chosen = await self._replayed_compensables(plan)
            for item in chosen:
                undo = item.step.compensation
                assert undo is not None
                kwargs = dict(item.kwargs)
                if item.step.compensation_takes_result:
                    kwargs["result"] = item.result
                outcome: dict[str, Any] = {
                    "step": item.step.name,
                    "seq": item.seq,
                    "compensation": undo.name,
                }
                try:
                    await self.run_step(undo, item.args, kwargs, kind=EntryKind.COMPENSATE)
                    outcome["status"] = "completed"
                except StepError as exc:
                    outcome["status"] = "failed"
                    outcome["error"] = f"{exc.error_type}: {exc.error_message}"
                self.compensations.append(outcome)
        except asyncio.CancelledError:
            if self.evicting:  # the worker stops (or pauses the run) mid-rollback
                self.rollback_interrupted = True
            raise

    async def _replayed_compensables(self, plan: list[str]) -> list[_Compensable]:
        """The planned steps, once the tasks that ran them have replayed them.

        Each was completed before the plan was recorded, so its task replays it from the
        journal without waiting for anything; a few loop turns are enough.
        """
        for _ in range(10_000):
            found = {c.seq: c for c in self.compensable}
            if all(s in found for s in plan):
                return [found[s] for s in plan]
            await asyncio.sleep(0)
        missing = [s for s in plan if s not in {c.seq for c in self.compensable}]
        self.nondeterminism = NonDeterminismError(
            f"run {self.run_id} ({self.workflow_name}): its rollback plan undoes the steps at "
            f"positions {', '.join(plan)}, but the code no longer completes {', '.join(missing)} "
            "before failing. Deploy code that matches the run, or guard the change with "
            "legato.patched(...)."
        )
        raise self.nondeterminism

    async def _routed_step(
        self,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        seq: str,
        entry: JournalEntry | None,
    ) -> Any:
        """Run ``step`` on a worker serving its queue, as a run of its own; wait durably."""
        from .definitions import ROUTED_PREFIX

        if entry is None:
            child_id = self._child_id(seq)
            encoded = dumps([list(args), kwargs], f"arguments of step {step.name!r}")
            child = NewRun(
                run_id=child_id,
                workflow=ROUTED_PREFIX + step.name,
                input=encoded,
                parent_run_id=self.run_id,
                parent_seq=seq,
                queue=step.queue or "default",
            )
            entry = await self._start_child(seq, EntryKind.STEP, step.name, child)

        def failed() -> Exception:
            err = entry.error_dict() or {}
            return StepError(step.name, err.get("type", "Error"), err.get("message", ""), 1, seq)

        what = f"result of step {step.name}"
        return await self._child_outcome(entry, step.return_annotation, what, failed)

    async def _start_child(
        self, seq: str, kind: EntryKind, name: str, child: NewRun, attempt: int = 1
    ) -> JournalEntry:
        """Create ``child`` and this run's entry for it (kind CHILD, or STEP when routed)."""
        if attempt == 1:  # a retried child's position already holds its entry
            await self._deliver_cancel(seq)
        waiting = JournalEntry(
            self.run_id,
            seq,
            kind,
            name,
            EntryStatus.WAITING,
            attempts=attempt,
            input=child.input,
            started_at=self.host.now(),
            child_run_id=child.run_id,
        )
        self.started_children = True
        return await self.host.start_child(waiting, child)

    async def _child_outcome(
        self,
        entry: JournalEntry,
        annotation: Any,
        what: str,
        failed: Callable[[], Exception],
    ) -> Any:
        """The child's result, its failure raised, or a durable wait until it ends."""
        if entry.status is EntryStatus.COMPLETED:
            return loads(entry.output, annotation, what)
        if entry.status is EntryStatus.FAILED:
            raise failed()
        await self._block(entry, _Wait(None, child=True))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- durable waits -------------------------------------------------------------------
    async def first_done(self, tasks: Sequence[asyncio.Task[Any]]) -> int:
        """Wait until one of ``tasks`` (tasks of this run) ends; return its index.

        Like ``asyncio.wait(FIRST_COMPLETED)``, but the run counts as waiting on its own
        tasks, so it can leave memory while they all wait durably. Which task ends first
        can differ on replay: callers journal the choice they act on.
        """
        for index, task in enumerate(tasks):
            if task.done():
                return index
        joined: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def finish(index: int) -> Callable[[asyncio.Task[Any]], None]:
            def done(_task: asyncio.Task[Any]) -> None:
                if not joined.done():
                    joined.set_result(index)

            return done

        callbacks = [finish(i) for i in range(len(tasks))]
        for task, callback in zip(tasks, callbacks, strict=True):
            task.add_done_callback(callback)
        self.joins.add(joined)
        try:
            return await joined
        finally:
            self.joins.discard(joined)
            for task, callback in zip(tasks, callbacks, strict=True):
                task.remove_done_callback(callback)

    async def _block(self, entry: JournalEntry, wait: _Wait) -> None:
        """Wait durably on ``entry``; a cancellation request ends the wait right here."""
        if self._stop_due():
            await self._cancel_at(entry)
        seq = entry.seq
        self.waits[seq] = wait
        forever: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.block_futures.add(forever)
        self.host.on_blocked()
        try:
            await forever  # ended only by eviction
        finally:
            self.waits.pop(seq, None)
            self.block_futures.discard(forever)

    async def _cancel_at(self, entry: JournalEntry) -> None:
        """Deliver a due cancel (or timeout) where ``entry`` stands: mark it, then raise."""
        self.cancel_delivered = True
        now = self.host.now()
        why = json.dumps(
            {
                "type": self.cancel_reason,
                "message": "ended by "
                + ("the run's timeout" if self.cancel_reason == TIMEOUT else "a cancellation"),
            }
        )
        await self.host.persist(
            [replace(entry, status=EntryStatus.CANCELLED, ended_at=now, error=why)]
        )
        raise asyncio.CancelledError(f"run {self.run_id} was {self._stopped_how()}")

    async def sleep(self, seconds: float) -> None:
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.SLEEP, "sleep")
        now = self.host.now()
        if entry is None:
            await self._deliver_cancel(seq)
            entry = JournalEntry(
                self.run_id,
                seq,
                EntryKind.SLEEP,
                "sleep",
                EntryStatus.WAITING,
                started_at=now,
                wake_at=now + seconds,
            )
            self.host.persist_nowait([entry])
        if entry.status is EntryStatus.COMPLETED:
            return
        assert entry.wake_at is not None
        if now >= entry.wake_at:
            self.host.persist_nowait([replace(entry, status=EntryStatus.COMPLETED, ended_at=now)])
            return
        await self._block(entry, _Wait(entry.wake_at))

    async def wait_for_signal(self, name: str, timeout: float | None) -> Any:
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.SIGNAL, name)
        if entry is not None:
            if entry.status is EntryStatus.COMPLETED:
                return loads(entry.output, Any, f"signal {name!r}")
            if entry.status is EntryStatus.TIMED_OUT:
                raise WaitTimeout(f"no signal {name!r} arrived before the timeout")
        else:
            await self._deliver_cancel(seq)
        now = self.host.now()
        waiting = entry or JournalEntry(
            self.run_id,
            seq,
            EntryKind.SIGNAL,
            name,
            EntryStatus.WAITING,
            started_at=now,
            wake_at=now + timeout if timeout is not None else None,
        )

        def completed(signal: SignalRecord) -> JournalEntry:
            return replace(
                waiting, status=EntryStatus.COMPLETED, output=signal.payload, ended_at=now
            )

        signal = await self.host.take_signal(waiting, (name,), completed)
        if signal is not None:
            return loads(signal.payload, Any, f"signal {name!r}")
        if waiting.wake_at is not None and now >= waiting.wake_at:
            await self.host.persist([replace(waiting, status=EntryStatus.TIMED_OUT, ended_at=now)])
            raise WaitTimeout(f"no signal {name!r} arrived before the timeout")
        await self._block(waiting, _Wait(waiting.wake_at, signals=(name,)))
        raise AssertionError("unreachable")  # pragma: no cover

    async def wait_any(self, conditions: Sequence[Condition], timeout: float | None) -> WaitResult:
        label = "|".join(f"{c.kind}:{c.name}" for c in conditions)
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.WAIT_ANY, label)
        if entry is not None:
            if entry.status is EntryStatus.COMPLETED:
                recorded = json.loads(entry.output or "{}")
                index = recorded["index"]
                return WaitResult(index, conditions[index].name, recorded.get("value"))
            if entry.status is EntryStatus.TIMED_OUT:
                raise WaitTimeout(f"none of {label} happened before the timeout")
        else:
            await self._deliver_cancel(seq)
        now = self.host.now()
        if entry is not None:
            deadlines = json.loads(entry.input or "[]")
        else:
            deadlines = [now + c.seconds if c.kind == "timer" else None for c in conditions]
            if timeout is not None:
                deadlines.append(now + timeout)
        timed = [d for d in deadlines if d is not None]
        waiting = entry or JournalEntry(
            self.run_id,
            seq,
            EntryKind.WAIT_ANY,
            label,
            EntryStatus.WAITING,
            input=json.dumps(deadlines),
            started_at=now,
            wake_at=min(timed) if timed else None,
        )
        names = [c.name for c in conditions if c.kind == "signal"]

        def won(index: int, value: Any) -> JournalEntry:
            return replace(
                waiting,
                status=EntryStatus.COMPLETED,
                output=json.dumps({"index": index, "value": value}),
                ended_at=now,
            )

        def on_signal(signal: SignalRecord) -> JournalEntry:
            index = next(i for i, c in enumerate(conditions) if c.name == signal.name)
            value: Any = json.loads(signal.payload) if signal.payload else None
            return won(index, value)

        if names:
            signal = await self.host.take_signal(waiting, names, on_signal)
            if signal is not None:
                index = next(i for i, c in enumerate(conditions) if c.name == signal.name)
                value = json.loads(signal.payload) if signal.payload else None
                return WaitResult(index, signal.name, value)
        else:
            self.host.persist_nowait([waiting])
        for index, deadline in enumerate(deadlines[: len(conditions)]):
            if deadline is not None and now >= deadline:
                await self.host.persist([won(index, None)])
                return WaitResult(index, conditions[index].name, None)
        if timeout is not None and now >= deadlines[-1]:
            await self.host.persist([replace(waiting, status=EntryStatus.TIMED_OUT, ended_at=now)])
            raise WaitTimeout(f"none of {label} happened before the timeout")
        await self._block(waiting, _Wait(waiting.wake_at, signals=tuple(names)))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- children ------------------------------------------------------------------------
    def _child_id(self, seq: str, attempt: int = 1, given: str = "") -> str:
        """``<run>:<seq>`` (or the id the code gave); a redriven run's new children and
        retried children get a suffix, so they are new runs, not the failed ones again."""
        child_id = given or f"{self.run_id}:{seq}"
        if self.redrives:
            child_id += f"~{self.redrives}"
        if attempt > 1:
            child_id += f"#{attempt}"
        return child_id

    async def child(
        self,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str,
        retry: Retry | None = None,
        detached: bool = False,
    ) -> Any:
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.CHILD, wf.name)
        policy = retry or NO_RETRY
        encoded = json.dumps(wf.encode_args(args, kwargs), separators=(",", ":"))

        def start(attempt: int) -> NewRun:
            now = self.host.now()
            return NewRun(
                run_id=self._child_id(seq, attempt, run_id),
                workflow=wf.name,
                input=encoded,
                version=wf.version,
                parent_run_id=self.run_id,
                parent_seq=seq,
                queue=wf.queue,
                detached=detached,
                deadline_at=now + wf.timeout if wf.timeout is not None else None,
            )

        if entry is None:
            entry = await self._start_child(seq, EntryKind.CHILD, wf.name, start(1))
        what = f"result of child {wf.name}"
        while True:
            attempt = max(entry.attempts, 1)
            failure = ChildRunError(entry.child_run_id or "?", "failed", entry.error_dict(), seq)
            if entry.status is EntryStatus.FAILED and policy.should_retry(failure, attempt):
                # The child failed but may try again: a new child run, same position.
                if self._stop_due():
                    await self._cancel_at(entry)
                await self.host.backoff(policy.delay(attempt))
                entry = await self._start_child(
                    seq, EntryKind.CHILD, wf.name, start(attempt + 1), attempt + 1
                )
                continue

            def failed(e: JournalEntry = entry) -> Exception:
                return ChildRunError(e.child_run_id or "?", "failed", e.error_dict(), seq)

            return await self._child_outcome(entry, wf.return_annotation, what, failed)

    # -- recorded values -----------------------------------------------------------------
    def recorded(self, kind: EntryKind, produce: Callable[[], Any], name: str = "") -> Any:
        """Return the journalled value at this position, or produce and record it.

        Synchronous: no other task of the run runs in between, which a decision that
        must be acted on at once (a fork's winner) relies on.
        """
        seq = self._next_seq()
        name = name or kind.value
        entry = self._expect(seq, kind, name)
        if entry is not None:
            return json.loads(entry.output or "null")
        value = produce()
        now = self.host.now()
        self.host.persist_nowait(
            [
                JournalEntry(
                    self.run_id,
                    seq,
                    kind,
                    name,
                    EntryStatus.COMPLETED,
                    output=json.dumps(value),
                    started_at=now,
                    ended_at=now,
                )
            ]
        )
        return value

    def patched(self, change_id: str) -> bool:
        self._guard()
        state = self._state()
        seq = f"{state.prefix}{state.counter + 1}"
        entry = self.journal.get(seq)
        if entry is not None and not (entry.kind is EntryKind.PATCH and entry.name == change_id):
            return False  # recorded before the change: keep to the old code path
        state.counter += 1
        self.visited.add(seq)
        if entry is None:
            now = self.host.now()
            self.host.persist_nowait(
                [
                    JournalEntry(
                        self.run_id,
                        seq,
                        EntryKind.PATCH,
                        change_id,
                        EntryStatus.COMPLETED,
                        started_at=now,
                        ended_at=now,
                    )
                ]
            )
        return True

    def suspension(self) -> Suspension:
        deadlines = [w.deadline for w in self.waits.values() if w.deadline is not None]
        if self.deadline is not None and not self.cancel_delivered:
            deadlines.append(self.deadline)  # wake to stop the run at its timeout
        signals = sorted({s for w in self.waits.values() for s in w.signals})
        children = tuple(seq for seq, w in self.waits.items() if w.child)
        return Suspension(
            min(deadlines) if deadlines else None,
            tuple(signals),
            children,
            cancel_delivered=self.cancel_delivered,
        )


def _attempt_record(
    attempt: int, started: float, ended: float, exc: BaseException | None
) -> dict[str, Any]:
    record: dict[str, Any] = {"attempt": attempt, "started_at": started, "ended_at": ended}
    if exc is not None:
        record["error"] = {
            "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc),
        }
    return record


def _encode_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    what = f"arguments of step {name!r}"
    if kwargs:
        return dumps({"args": list(args), "kwargs": kwargs}, what)
    return dumps(list(args), what)
