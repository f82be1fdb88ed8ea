"""Commands a workflow calls: durable sleep, signals, children, recorded values.

Each is journalled: after a crash, replay returns what was recorded the first time, so
workflow code stays deterministic. Use these instead of ``asyncio.sleep``, ``time.time``,
``uuid.uuid4`` and ``random.random`` inside workflows.
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from ..records import EntryKind
from .definitions import Workflow
from .host import StepInfo, step_info_var
from .retry import Retry, seconds
from .tasks import require_context
from .waits import Condition, WaitResult

P = ParamSpec("P")
R = TypeVar("R")


async def sleep(duration: float | timedelta) -> None:
    """Sleep durably: the run leaves memory and wakes when the time comes, on any worker."""
    await require_context("legato.sleep").sleep(seconds(duration))


async def wait_for_signal(
    name: str, timeout: float | timedelta | None = None, *, type: Any = Any
) -> Any:
    """Wait until a signal ``name`` is sent to this run; return its data.

    A signal sent before the wait starts is buffered, never lost. Raises
    :class:`legato.WaitTimeout` after ``timeout``.

    ``type`` (a pydantic model, a dataclass, ``int``...; default: the type the workflow
    declares for ``name`` in ``@legato.workflow(signals=...)``, else any JSON) is what the
    data is validated into. While the run waits here, a client checks a payload against
    it before sending (``InvalidInput``); a payload that does not fit when it is received
    raises :class:`legato.PayloadError` here. A workflow that declares its signals may
    only wait for those (``ConfigurationError`` otherwise: no client would send another).
    """
    ctx = require_context("legato.wait_for_signal")
    limit = seconds(timeout) if timeout is not None else None
    return await ctx.wait_for_signal(name, limit, type)


def signal(name: str) -> Condition:
    """A :func:`wait_any` condition: the signal ``name`` arrives."""
    return Condition("signal", name)


def timer(duration: float | timedelta, name: str = "timer") -> Condition:
    """A :func:`wait_any` condition: ``duration`` passes."""
    return Condition("timer", name, seconds(duration))


async def wait_any(*conditions: Condition, timeout: float | timedelta | None = None) -> WaitResult:
    """Wait for the first of several signals or timers; return which one and its value."""
    if not conditions:
        raise ValueError("wait_any needs at least one condition")
    ctx = require_context("legato.wait_any")
    return await ctx.wait_any(conditions, seconds(timeout) if timeout is not None else None)


async def child(
    workflow: Workflow[P, R],
    *args: Any,
    run_id: str | None = None,
    retry: Retry | None = None,
    detached: bool = False,
    **kwargs: Any,
) -> R:
    """Run ``workflow`` as a child run and return its result.

    The child is a run of its own (any worker may execute it, it has its own journal);
    its id defaults to ``<parent id>:<position>`` so a replay never starts it twice.
    Raises :class:`legato.ChildRunError` if the child fails (after ``retry``: each retry
    is a new child run, ``<id>#2`` and so on). When the parent ends, a child that still
    runs is cancelled, unless ``detached=True``.
    """
    ctx = require_context("legato.child")
    result: R = await ctx.child(workflow, args, kwargs, run_id or "", retry, detached)
    return result


def now() -> datetime:
    """The current time (UTC), recorded: a replay sees the same value."""
    ctx = require_context("legato.now")
    stamp = ctx.recorded(EntryKind.NOW, ctx.host.now)
    return datetime.fromtimestamp(stamp, tz=UTC)


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded: a replay sees the same value."""
    ctx = require_context("legato.uuid4")
    return _uuid.UUID(ctx.recorded(EntryKind.UUID, lambda: str(_uuid.uuid4())))


def random() -> float:
    """A random float in [0, 1), recorded: a replay sees the same value."""
    ctx = require_context("legato.random")
    return float(ctx.recorded(EntryKind.RANDOM, _random.random))


def patched(change_id: str) -> bool:
    """True for runs that reach this point on the new code; False for older runs.

    Wrap a change to a deployed workflow in ``if legato.patched("id"): new else: old``
    so that runs recorded before the change replay the old path.
    """
    return require_context("legato.patched").patched(change_id)


def step_info() -> StepInfo:
    """Inside a running step: its run id, position, attempt and idempotency key."""
    info = step_info_var.get()
    if info is None:
        raise RuntimeError("legato.step_info() can only be called inside a running step")
    return info


def heartbeat(details: Any = None) -> None:
    """Inside a running step: say it is alive, optionally with progress ``details``.

    Beats keep a step with ``heartbeat_timeout`` from being timed out. Details (JSON) are
    recorded (at most once a second) and shown by ``legato runs show``; a later attempt
    of the step reads them from ``legato.step_info().heartbeat_details`` to resume.
    Outside a step (a step function called directly, in a unit test) it does nothing.
    Callable from the step's thread or coroutine. Raises :class:`legato.StepCancelled`
    once the run is cancelled or times out, so a long sync step stops at its next beat.
    """
    info = step_info_var.get()
    if info is not None and info.channel is not None:
        info.channel.beat(details)


def idempotency_key() -> str:
    """Inside a running step: ``run_id:seq``, the same on every retry and after a crash."""
    return step_info().idempotency_key
