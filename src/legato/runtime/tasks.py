"""Numbering the tasks of a workflow, and finding the workflow of the running task.

See docs/decisions/0001: a task created by workflow task ``P`` as its ``k``-th command
gets the prefix ``P.k.``, so journal positions follow the order the code *creates* tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import WorkflowContext


@dataclass
class TaskState:
    ctx: WorkflowContext
    prefix: str
    counter: int = 0


task_states: weakref.WeakKeyDictionary[asyncio.Task[Any], TaskState] = weakref.WeakKeyDictionary()


def task_factory(
    loop: asyncio.AbstractEventLoop,
    coro: Coroutine[Any, Any, Any],
    *,
    context: contextvars.Context | None = None,
) -> asyncio.Task[Any]:
    """Event-loop task factory that numbers the tasks a workflow creates.

    A task created by workflow task ``P`` as its ``k``-th command gets prefix ``P.k.``,
    so ``asyncio.gather(a(), b())`` numbers a's commands ``k.1, k.2`` and b's
    ``(k+1).1, ...`` however their steps interleave at run time.
    """
    parent = asyncio.current_task(loop)
    task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
    if parent is not None:
        state = task_states.get(parent)
        if state is not None:
            state.counter += 1
            task_states[task] = TaskState(state.ctx, f"{state.prefix}{state.counter}.")
            state.ctx.tasks.add(task)
            task.add_done_callback(state.ctx.task_done)
    return task


def current_context() -> WorkflowContext | None:
    """The context of the workflow running in the current task, if any."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop in this thread (e.g. inside a sync step)
        return None
    if task is None:
        return None
    state = task_states.get(task)
    return state.ctx if state is not None else None


def require_context(what: str) -> WorkflowContext:
    ctx = current_context()
    if ctx is None:
        raise RuntimeError(f"{what} can only be used inside a running @legato.workflow")
    return ctx
