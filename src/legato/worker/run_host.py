"""The host side of one run in memory: the bridge between its loop and the worker's.

A run's workflow code runs on its own :class:`RunLoop`; everything that does I/O (store
writes, step bodies, child starts) runs on the worker's loop. :class:`RunHost` carries
each such operation across: the workflow awaits a future on its own loop, the work runs
as a task on the worker's loop, and the result comes back. Pending operations are
counted, which is half of knowing the run is idle (the other half is its loop having
nothing ready).

A run this worker no longer owns (a fenced write, a refused signal take or child start,
a store error, a heartbeat that finds the lease gone) is *lost*: every command raises
:class:`LeaseLost`, steps in flight are cancelled, and no new operation starts.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import LeaseLost
from ..logs import run_fields
from ..outages import expected
from ..records import ClaimedRun, JournalEntry, NewRun, SignalRecord
from ..runtime.context import WorkflowContext
from ..runtime.definitions import Step
from ..runtime.host import HeartbeatChannel, StepInfo, step_info_var
from ..runtime.loop import RunLoop
from ..store.base import Lease
from .attempts import watch_attempt
from .isolation import run_in_child_process
from .services import current_client, current_store

if TYPE_CHECKING:
    from ..apps import App
    from .worker import Worker

log = logging.getLogger(__name__)

T = TypeVar("T")


class RunHost:
    """Implements :class:`legato.runtime.host.RuntimeHost` for one claimed run."""

    def __init__(self, worker: Worker, claimed: ClaimedRun) -> None:
        self.worker = worker
        self.loop = asyncio.get_running_loop()
        self.run = claimed.run
        self.lease = Lease(claimed.run.run_id, worker.worker_id, claimed.run.lease_epoch)
        # Signals buffered when the run was claimed. While this worker holds the lease
        # nobody else consumes them, so waits can take them without a round trip.
        self.buffered = list(claimed.signals)
        self.run_loop = RunLoop(  # type: ignore[abstract]
            worker.clock.now, self._request_turn, self._request_timer
        )
        self.ctx = WorkflowContext(
            run_id=claimed.run.run_id,
            workflow_name=claimed.run.workflow,
            journal=claimed.journal,
            host=self,
            cancel_requested=claimed.run.cancel_requested,
            deadline=claimed.run.deadline_at,
            redrives=claimed.run.redrives,
        )
        self.run_loop.ctx = self.ctx
        self.pending = 0  # host operations the workflow awaits
        self._steps: set[asyncio.Future[Any]] = set()  # step attempts in flight
        self._channels: set[HeartbeatChannel] = set()
        self._channel_limit = 64
        self._turn_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None

    @property
    def app(self) -> App:
        return self.worker.app

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def worker_id(self) -> str:
        return self.worker.worker_id

    def log_fields(self) -> dict[str, str]:
        """The ``extra`` of this worker's log records about the run (see legato.logs)."""
        return run_fields(self.run_id, self.run.workflow, self.worker.worker_id)

    # -- driving the run's loop ------------------------------------------------------------
    def _request_turn(self) -> None:
        if not self._turn_scheduled:
            self._turn_scheduled = True
            self.loop.call_soon(self._turn)

    def _request_timer(self, when: float) -> None:
        if self._timer is not None and self._timer_at is not None and self._timer_at <= when:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        delay = max(0.0, when - self.worker.clock.now())
        self._timer = self.loop.call_later(delay, self._timer_due)

    def cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None

    def _timer_due(self) -> None:
        self._timer = self._timer_at = None
        self._turn()

    def clock_jumped(self) -> None:
        """The workflow clock moved (a virtual clock): timers may be due now."""
        self.cancel_timer()
        when = self.run_loop.next_timer()
        if when is not None:
            self._request_timer(when)

    def _turn(self) -> None:
        self._turn_scheduled = False
        if self.run_loop.is_running() or self.run_loop.is_closed():
            return  # (a turn is under way: what it made ready runs in it)
        self.run_loop.run_turn()
        self.after_turn()

    def after_turn(self) -> None:
        """Hook: the run's loop ran (see RunExecution: idle detection)."""

    # -- bridging operations to the worker's loop ----------------------------------------
    def _alive(self) -> None:
        if self.ctx.lost:
            raise LeaseLost(self.run_id)
        if self.worker.killed:
            self.lose()
            raise LeaseLost(self.run_id)

    async def _on_worker(
        self,
        start: Callable[[], Awaitable[T]],
        store_call: bool = True,
        settles: Callable[[T], bool] | None = None,
    ) -> T:
        """Run ``start()`` on the worker's loop (a coroutine as a task of it; a future of it
        as it is); await it from the run's loop.

        A store call that fails is not the workflow's fault: it must never reach workflow
        code (it could fail the run). The run is lost here instead and retried from its
        journal by whichever worker claims it next.
        """
        self._alive()
        result: asyncio.Future[T] = self.run_loop.create_future()
        self.pending += 1
        started: list[asyncio.Future[T]] = []

        def finished(task: asyncio.Future[T]) -> None:
            if not store_call:
                self._steps.discard(task)
            if result.done():  # the workflow stopped waiting for it
                if not task.cancelled():
                    task.exception()  # retrieved: nothing is left unreported
                return
            self._turn_scheduled = True  # run below, at once, rather than scheduled
            if task.cancelled():
                result.cancel()
            elif (exc := task.exception()) is not None:
                if store_call and not isinstance(exc, LeaseLost):
                    self._store_failed(exc)
                    self.lose("error")
                    result.set_exception(LeaseLost(self.run_id))
                else:
                    result.set_exception(exc)
            else:
                result.set_result(task.result())
            self._turn()  # the workflow goes on now, not one loop iteration later

        def launch() -> None:
            if result.done():
                return
            try:
                task: asyncio.Future[T] = asyncio.ensure_future(start(), loop=self.loop)
            except (LeaseLost, Exception) as exc:  # refused, or failed before it began
                if store_call and not isinstance(exc, LeaseLost):
                    self._store_failed(exc)
                    self.lose("error")
                    exc = LeaseLost(self.run_id)
                result.set_exception(exc)
                return
            if not store_call:
                self._steps.add(task)
            task.add_done_callback(finished)
            started.append(task)

        self._on_worker_loop(launch)  # at once: in order with every other write
        try:
            if settles is None:
                try:
                    return await result
                except asyncio.CancelledError:
                    if started and result.cancelled():
                        started[0].cancel()  # the workflow gave up on it: so does the work
                    raise
            held_off = False
            while True:
                try:
                    value = await asyncio.shield(result)
                    break
                except asyncio.CancelledError:
                    if self.ctx.lost or self.ctx.evicting or result.cancelled():
                        raise
                    # The workflow's own construct (asyncio.timeout, a TaskGroup) cancelled
                    # it while an outcome may be being written: held off until it is known.
                    held_off = True
            if held_off and not settles(value):
                raise asyncio.CancelledError  # nothing was settled: the cancellation stands
            return value  # the outcome stands (as it will on replay); the cancel is dropped
        finally:
            self.pending -= 1

    def now(self) -> float:
        return self.worker.clock.now()

    async def persist(self, entries: Sequence[JournalEntry], settles: bool = False) -> None:
        recording = self._on_worker(
            lambda: self.worker.store.record_soon(self.lease, entries),
            settles=_always if settles else None,
        )
        if not await recording:
            self.lose()
            raise LeaseLost(self.run_id)

    def _on_worker_loop(self, call: Callable[[], None]) -> None:
        """Call ``call`` now, with the worker's loop as the running one (during a turn the
        run's loop is), so that what it creates belongs to the worker's loop.

        Never deferred: writes reach the store's queue in the order the workflow made them
        (a deferred "running" mark must not land after the step's result)."""
        outer = asyncio.events._get_running_loop()
        if outer is self.loop:
            call()
            return
        asyncio.events._set_running_loop(self.loop)
        try:
            call()
        finally:
            asyncio.events._set_running_loop(outer)

    def persist_nowait(self, entries: Sequence[JournalEntry]) -> None:
        if not self.ctx.lost and not self.worker.killed:
            self._queue_write(
                lambda: self.worker.store.record_nowait(self.lease, entries, self._write_failed)
            )

    def _queue_write(self, submit: Callable[[], None]) -> None:
        """Queue a write; one refused at once (a closed store) releases the run, as a
        failed queued write does: it never reaches workflow code."""
        try:
            self._on_worker_loop(submit)
        except Exception as exc:
            self._write_failed(exc)

    def persist_later(self, entries: Sequence[JournalEntry], delay: float) -> asyncio.TimerHandle:
        return self.loop.call_later(delay, self.persist_nowait, entries)

    def _store_failed(self, exc: BaseException) -> None:
        """A store call of the run failed: the run is released either way. An outage is
        the worker's to report once (every run in memory fails at the same moment); any
        other failure is this run's."""
        if expected(exc):
            log.debug("run %s: store call failed (%s); releasing it", self.run_id, exc)
            self.worker.outage.failed(exc, "runs in memory are released, to be claimed again")
        else:
            log.error("run %s: store call failed (%s); releasing it", self.run_id, exc)

    def _write_failed(self, exc: BaseException | None) -> None:
        """A queued write was fenced (None) or failed: this copy of the run must stop."""
        if exc is not None:
            self._store_failed(exc)
            self.lose("error")
        else:
            self.lose()

    def expect_wakeup(self) -> None:
        self.worker.touched(self.run_id)

    def heartbeat_channel(self, record: Callable[[Any], None]) -> HeartbeatChannel:
        if len(self._channels) > self._channel_limit:  # attempts that never started
            self._channels = {c for c in self._channels if not c.closed}  # leave theirs
            self._channel_limit = max(64, 2 * len(self._channels))  # amortised: O(1) each
        channel = HeartbeatChannel(self.loop, record)
        if self.ctx.stop_pending():
            channel.request_cancel()
        self._channels.add(channel)
        return channel

    async def execute_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], info: StepInfo
    ) -> Any:
        return await self._on_worker(
            lambda: self._attempt(step, args, kwargs, info), store_call=False
        )

    def _attempt(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], info: StepInfo
    ) -> asyncio.Future[Any]:
        """Start one attempt of the user's function on the worker's loop (sync: in the
        thread pool); a timed attempt is watched by a task of its own."""
        self._alive()
        context = contextvars.copy_context()
        context.run(step_info_var.set, info)
        context.run(current_store.set, self.worker.store)
        context.run(current_client.set, self.worker.client)
        pending: asyncio.Future[Any]
        if step.is_async:
            coro: Any = step.fn(*args, **kwargs)
            pending = asyncio.Task(coro, context=context)
        elif step.kill_on_timeout:
            pending = asyncio.Task(run_in_child_process(step.fn, args, kwargs), context=context)
        else:
            call = functools.partial(context.run, _plain_call, step.fn, args, kwargs)
            pending = self.loop.run_in_executor(self.worker.pool, call)
        if info.channel is not None:
            pending.add_done_callback(partial_discard(self._channels, info.channel))
        if step.timeout is None and step.heartbeat_timeout is None:
            return pending  # cancelling it cancels an async step; a thread is told
        watched = asyncio.ensure_future(watch_attempt(pending, step, info), loop=self.loop)
        watched.add_done_callback(lambda w: pending.cancel() if w.cancelled() else None)
        return watched

    async def backoff(self, delay: float) -> None:
        # Counted with the steps in flight, so a cancel or the run's deadline cuts it short.
        await self._on_worker(lambda: asyncio.sleep(delay), store_call=False)

    async def take_signal(
        self,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> SignalRecord | None:
        self._alive()
        known = next((sig for sig in self.buffered if sig.name in names), None)
        if known is not None:
            # The oldest matching signal, as the store would pick it. Its consumption is
            # queued with the run's next write: if that is lost in a crash, the replay
            # takes the same signal again, so nothing depends on waiting for it here.
            self.buffered.remove(known)
            entry = on_signal(known)
            self._queue_write(
                lambda: self.worker.store.consume_signal_nowait(
                    self.lease, known, entry, self._write_failed
                )
            )
            return known
        held, signal = await self._on_worker(  # a signal taken is a signal delivered
            lambda: self.worker.store.take_signal(self.lease, waiting, names, on_signal),
            settles=lambda taken: taken[1] is not None,  # only if one was taken
        )
        if not held:
            self.lose()
            raise LeaseLost(self.run_id)
        return signal

    async def start_child(self, entry: JournalEntry, child: NewRun) -> JournalEntry:
        stored: JournalEntry | None = await self._on_worker(  # a started child stands
            lambda: self.worker.store.start_child(self.lease, entry, child, self.now()),
            settles=_always,
        )
        if stored is None:
            self.lose()
            raise LeaseLost(self.run_id)
        return stored

    # -- stopping --------------------------------------------------------------------------
    def cancel_steps(self) -> None:
        """Stop the step attempts in flight: async ones at once, sync ones at a heartbeat."""
        for channel in list(self._channels):
            channel.request_cancel()
        for task in list(self._steps):
            task.cancel()

    def lose(self, why: str = "lost") -> None:
        """This worker no longer owns the run: nothing more of it executes here."""
        self.ctx.lost = True
        self.cancel_steps()
        self.decide(why)

    def decide(self, outcome: str) -> None:
        """Hook: how the execution ends (see RunExecution)."""


def partial_discard(items: set[Any], item: Any) -> Callable[[Any], None]:
    """A done-callback that forgets ``item``."""
    return lambda _: items.discard(item)


def _plain_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a sync step. ``StopIteration`` cannot cross into an asyncio future (the step
    would never end): it is re-raised as a RuntimeError, as a coroutine's would be."""
    try:
        return fn(*args, **kwargs)
    except (StopIteration, StopAsyncIteration) as exc:
        raise RuntimeError(f"the step raised {type(exc).__name__}") from exc


def _always(_: Any) -> bool:
    return True
