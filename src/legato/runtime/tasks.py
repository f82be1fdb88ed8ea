"""Which run a workflow task belongs to, and its position prefix.

See docs/decisions/0001: a task created by workflow task ``P`` as its ``k``-th command
gets the prefix ``P.k.``, so journal positions follow the order the code *creates* tasks.
The run's loop (loop.py) assigns the prefixes as it creates tasks.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .context import WorkflowContext


@dataclass
class TaskState:
    ctx: WorkflowContext
    prefix: str
    counter: int = 0
    refused: bool = False  # a command was refused because the run leaves this worker


task_states: weakref.WeakKeyDictionary[asyncio.Task[Any], TaskState] = weakref.WeakKeyDictionary()


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
