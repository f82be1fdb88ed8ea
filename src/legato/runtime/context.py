"""The workflow context: the state and commands of one run in a worker's memory.

No I/O happens here. A :class:`RuntimeHost` (the worker) persists entries, runs step
functions and starts children; the context decides *what* to do by comparing each
command with the run's journal. It is assembled from one class per seam:

* ``journal.py``       positions, journal matching, recorded values, ``patched``;
* ``cancellation.py``  where a cancel or the run's timeout is delivered and recorded;
* ``waits.py``         durable waits and the wake path into a resident run;
* ``steps.py``         step attempts, retries and durable back-off;
* ``children.py``      child runs and routed steps;
* ``compensation.py``  the saga rollback.

The workflow's tasks run on the run's own event loop (``loop.py``), which is how the
worker knows when the run is idle and how a run that left the worker executes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .compensation import ROLLBACK, Compensable, Compensation
from .journal import TIMEOUT, seq_key
from .steps import DURABLE_BACKOFF
from .waits import Condition, Wait, WaitResult

__all__ = [
    "DURABLE_BACKOFF",
    "ROLLBACK",
    "TIMEOUT",
    "Compensable",
    "Condition",
    "Wait",
    "WaitResult",
    "WorkflowContext",
    "seq_key",
]


@dataclass
class WorkflowContext(Compensation):
    """State of one run while it is in a worker's memory."""

    def __post_init__(self) -> None:
        self.compensable = []
        self.compensations = []

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

    def cancel_tasks(self) -> list[asyncio.Task[Any]]:
        """Cancel every task of the run still alive (eviction, loss or the end of the run);
        from now on no command may run. Returns the tasks to let unwind."""
        if not self.lost:
            self.evicting = True
        alive = [t for t in list(self.tasks) if not t.done()]
        for task in alive:
            task.cancel()
        return alive

    def retrieve_root(self) -> None:
        """Mark the root task's exception as seen (it is reported, not lost)."""
        root = self.root()
        if root is not None and root.done() and not root.cancelled():
            root.exception()
