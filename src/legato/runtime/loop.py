"""The run's own event loop: where a workflow's tasks run, and how we know it is idle.

Every run in a worker's memory executes its workflow code on a :class:`RunLoop` of its
own, which the worker's real loop drives turn by turn (``run_turn``). This is what makes
readiness explicit rather than guessed:

* a run is *idle* when its loop has nothing ready to run, no host operation (a step, a
  store write) is pending, and every timer left on it belongs to a durable wait. Any
  asyncio construct (``gather``, ``TaskGroup``, ``wait_for``, ``wait``, ``timeout``,
  ``shield``) works unchanged, because it only ever schedules callbacks and timers here;
* a run whose lease is lost is simply never driven again except to unwind it: no
  callback of its code runs on the worker's loop;
* tasks are numbered as they are created (docs/decisions/0001): a task created by
  workflow task ``P`` as its ``k``-th command gets the position prefix ``P.k.``.

Timers follow the workflow clock (``time()`` is the worker's :class:`Clock`), so a test's
virtual clock moves ``asyncio.sleep`` and ``asyncio.timeout`` inside a workflow too.
The loop is single-threaded and never blocks: ``run_in_executor`` is refused (blocking
work belongs in a step).
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..errors import LeaseLost
from .tasks import TaskState, task_states

if TYPE_CHECKING:
    from .journal import ContextBase

log = logging.getLogger(__name__)

TURN_BUDGET = 10_000
"""Callbacks one turn may run before yielding to the worker's loop (a busy workflow)."""

_Entry = tuple[Any, Callable[..., Any], tuple[Any, ...], contextvars.Context]


class _Soon:
    """What ``call_soon`` returns: all asyncio's callers need of a handle is ``cancel``."""

    __slots__ = ("_cancelled",)

    def __init__(self) -> None:
        self._cancelled = False

    def cancel(self) -> None:
        self._cancelled = True

    def cancelled(self) -> bool:
        return self._cancelled


class RunLoop(asyncio.AbstractEventLoop):  # only what asyncio's tasks and futures use
    """A minimal event loop for one run's workflow tasks. See the module docstring.

    ``request_turn()`` asks the driver for a turn soon; ``request_timer(when)`` asks for
    one at workflow time ``when``. The driver calls :meth:`run_turn`.
    """

    def __init__(
        self,
        clock: Callable[[], float],
        request_turn: Callable[[], None],
        request_timer: Callable[[float], None],
    ) -> None:
        self._clock = clock
        self._request_turn = request_turn
        self._request_timer = request_timer
        self._ready: deque[_Entry] = deque()
        self._timers: list[tuple[float, int, asyncio.TimerHandle, _Entry]] = []
        self._timer_count = 0
        self.durable_timers: set[asyncio.TimerHandle] = set()
        self._running = False
        self._closed = False
        self.ctx: ContextBase | None = None
        self._exception_handler: Any = None

    # -- scheduling ----------------------------------------------------------------------
    def time(self) -> float:
        return self._clock()

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., Any],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        context = context if context is not None else contextvars.copy_context()
        handle = _Soon()
        self._ready.append((handle, callback, args, context))
        if not self._running:
            self._request_turn()
        return handle  # type: ignore[return-value]

    def call_soon_threadsafe(  # type: ignore[override]
        self,
        callback: Callable[..., Any],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        raise RuntimeError(
            "workflow code cannot be called from another thread: put threaded work in a step"
        )

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., Any],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_at(self.time() + delay, callback, *args, context=context)

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., Any],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        context = context if context is not None else contextvars.copy_context()
        handle = asyncio.TimerHandle(when, callback, args, self, context)
        self._timer_count += 1
        heapq.heappush(
            self._timers, (when, self._timer_count, handle, (handle, callback, args, context))
        )
        self._request_timer(when)
        return handle

    def durable_timer(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        """A timer of a durable wait: it does not keep the run in memory (the wait's
        deadline is part of the run's wake condition when it leaves)."""
        handle = self.call_at(when, callback)
        self.durable_timers.add(handle)
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        """asyncio's timer handles report their cancellation; dropped lazily instead."""

    def next_timer(self) -> float | None:
        """When the earliest live timer is due (workflow time), if any."""
        self._drop_cancelled_timers()
        return self._timers[0][0] if self._timers else None

    def next_plain_timer(self) -> float | None:
        """When the earliest live timer that is not a durable wait's is due, if any."""
        plain = [
            when
            for when, _, handle, _ in self._timers
            if not handle.cancelled() and handle not in self.durable_timers
        ]
        return min(plain) if plain else None

    def _drop_cancelled_timers(self) -> None:
        while self._timers and self._timers[0][2].cancelled():
            _, _, handle, _ = heapq.heappop(self._timers)
            self.durable_timers.discard(handle)

    def has_ready(self) -> bool:
        return bool(self._ready)

    def only_durable_timers(self) -> bool:
        """Every live timer belongs to a durable wait (an asyncio timer keeps the run)."""
        return all(t[2].cancelled() or t[2] in self.durable_timers for t in self._timers)

    # -- driving -------------------------------------------------------------------------
    def run_turn(self) -> bool:
        """Run what is ready, and the timers that are due; True if work is left over.

        The worker's loop stays the running loop for everything the workflow schedules
        there (steps, store writes); only while this runs is the run's loop current.
        """
        if self._closed:
            return False
        outer = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        try:
            now = self.time()
            self._drop_cancelled_timers()
            while self._timers and self._timers[0][0] <= now:
                _, _, timer, entry = heapq.heappop(self._timers)
                self.durable_timers.discard(timer)
                if not timer.cancelled():
                    self._ready.append(entry)
            budget = TURN_BUDGET
            while self._ready and budget:
                handle, callback, args, context = self._ready.popleft()
                budget -= 1
                if handle.cancelled():
                    continue
                try:
                    context.run(callback, *args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    self.call_exception_handler(
                        {"message": "callback of a workflow task failed", "exception": exc}
                    )
        finally:
            self._running = False
            asyncio.events._set_running_loop(outer)
        if self._ready:
            self._request_turn()  # the budget ran out: let the worker's loop breathe first
        elif self._timers:
            self._request_timer(self._timers[0][0])
        return bool(self._ready)

    # -- tasks and futures -----------------------------------------------------------------
    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, Any],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
        **_: Any,
    ) -> asyncio.Task[Any]:
        """A task of the run: numbered after the task that creates it."""
        parent = asyncio.current_task(self) if self._running else None
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=self, name=name, context=context)
        state = task_states.get(parent) if parent is not None else None
        if state is not None:
            state.counter += 1
            task_states[task] = TaskState(state.ctx, f"{state.prefix}{state.counter}.")
            state.ctx.tasks.add(task)
            task.add_done_callback(state.ctx.task_done)
        return task

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> Any:
        raise RuntimeError(
            "workflow code cannot run blocking functions (run_in_executor, to_thread): "
            "make it a @legato.step"
        )

    # -- the rest of the loop interface ----------------------------------------------------
    def get_debug(self) -> bool:
        return False

    def set_debug(self, enabled: bool) -> None:
        pass

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True
        self._ready.clear()
        self._timers.clear()
        self.durable_timers.clear()

    def get_exception_handler(self) -> Any:
        return self._exception_handler

    def set_exception_handler(self, handler: Any) -> None:
        self._exception_handler = handler

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        run = self.ctx.run_id if self.ctx is not None else "?"
        if isinstance(exc, LeaseLost):  # the run left this worker: nobody awaits its work
            log.debug("run %s: %s (%s)", run, context.get("message"), exc)
            return
        log.error("run %s: %s", run, context.get("message"), exc_info=exc)

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if self._exception_handler is not None:
            self._exception_handler(self, context)
        else:
            self.default_exception_handler(context)

    def get_task_factory(self) -> None:
        return None

    def set_task_factory(self, factory: Any) -> None:
        raise RuntimeError("a run's event loop numbers its own tasks; it takes no factory")

    async def shutdown_asyncgens(self) -> None:
        pass

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        pass
