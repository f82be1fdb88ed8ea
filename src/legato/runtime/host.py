"""The runtime's view of the worker: what a workflow context needs done, and step info.

The runtime decides; a host (the worker's RunExecution) performs the I/O.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..records import JournalEntry, NewRun, SignalRecord

if TYPE_CHECKING:
    from .definitions import Step


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a running step knows about itself (see :func:`legato.step_info`)."""

    run_id: str
    seq: str
    name: str
    attempt: int

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and crashes of this step: ``run_id:seq``."""
        return f"{self.run_id}:{self.seq}"


step_info_var: contextvars.ContextVar[StepInfo | None] = contextvars.ContextVar(
    "legato_step_info", default=None
)


RUNNING_MARK_DELAY = 0.05
"""Seconds a step attempt runs before the journal marks it ``running``."""


class _Cancellable(Protocol):
    def cancel(self) -> None: ...


class RuntimeHost(Protocol):
    """What the context needs from the worker that runs it."""

    def now(self) -> float:
        """The workflow clock (seconds since the epoch)."""

    async def persist(self, entries: Sequence[JournalEntry]) -> None:
        """Write entries durably; raise CancelledError if the lease is lost."""

    def persist_nowait(self, entries: Sequence[JournalEntry]) -> None:
        """Queue entries for the next grouped commit (a failure stops this copy of the run)."""

    def persist_later(self, entries: Sequence[JournalEntry], delay: float) -> _Cancellable:
        """Queue entries after ``delay`` seconds unless cancelled first."""

    async def execute_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], info: StepInfo
    ) -> Any:
        """Run the user's step function once (thread pool for sync ones), with its timeout."""

    async def backoff(self, delay: float) -> None:
        """Wait between attempts of a step."""

    async def take_signal(
        self,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> SignalRecord | None:
        """Consume a buffered signal (writing ``on_signal(signal)``) or write ``waiting``."""

    async def start_child(self, entry: JournalEntry, child: NewRun) -> JournalEntry:
        """Create a child run with the parent's entry for it; return the stored entry."""

    def on_blocked(self) -> None:
        """A wait began, or a step ended while waits exist: the run may be quiescent."""
