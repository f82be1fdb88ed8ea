"""The runtime's view of the worker: what a workflow context needs done, and step info.

The runtime decides; a host (the worker's RunExecution) performs the I/O.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import StepCancelled
from ..records import JournalEntry, NewRun, SignalRecord

if TYPE_CHECKING:
    from ..apps import App
    from .definitions import Step


class HeartbeatChannel:
    """Carries :func:`legato.heartbeat` calls of one step attempt to its run's event loop.

    A step may beat from any thread. The time of the last beat is kept for the heartbeat
    timeout; details are handed to ``record`` on the loop, at most once per
    ``min_interval`` seconds (the latest details win), so a chatty step costs few writes.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        record: Callable[[Any], None],
        min_interval: float = 1.0,
    ) -> None:
        self.loop = loop
        self.record = record
        self.min_interval = min_interval
        self.last_beat = time.monotonic()
        self.closed = False
        self.cancel_requested = False  # the run is stopping: heartbeat() raises
        self._latest: Any = None
        self._scheduled = False
        self._last_write = 0.0

    def beat(self, details: Any) -> None:
        self.last_beat = time.monotonic()
        if self.cancel_requested:  # even once the workflow stopped waiting for it
            raise StepCancelled(
                "the run of this step was cancelled or timed out: stop the step (let this "
                "exception propagate)"
            )
        if details is not None and not self.closed:
            self.loop.call_soon_threadsafe(self._offer, details)

    @property
    def details(self) -> Any:
        """The latest details this attempt gave (None if it gave none)."""
        return self._latest

    def _offer(self, details: Any) -> None:
        self._latest = details
        if self._scheduled or self.closed:
            return
        self._scheduled = True
        wait = max(0.0, self._last_write + self.min_interval - time.monotonic())
        self.loop.call_later(wait, self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if not self.closed:
            self._last_write = time.monotonic()
            self.record(self._latest)

    def close(self) -> None:
        """The attempt ended: later beats (from a thread left running) are ignored."""
        self.closed = True

    def request_cancel(self) -> None:
        """The run stops: the step's next heartbeat raises :class:`StepCancelled`."""
        self.cancel_requested = True


@dataclass(frozen=True, slots=True)
class StepInfo:
    """What a running step knows about itself (see :func:`legato.step_info`).

    ``heartbeat_details`` are the last details an earlier attempt of this step gave
    :func:`legato.heartbeat` (None on a first attempt): a long step can resume from them.
    """

    run_id: str
    seq: str
    name: str
    attempt: int
    heartbeat_details: Any = None
    channel: HeartbeatChannel | None = field(default=None, repr=False, compare=False)

    @property
    def cancel_requested(self) -> bool:
        """The run was cancelled or timed out while this attempt runs: stop soon.

        A sync step learns it here or from :func:`legato.heartbeat` raising; an async step
        is cancelled outright."""
        return self.channel is not None and self.channel.cancel_requested

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

    @property
    def worker_id(self) -> str:
        """Who runs the run: named in the log records the runtime writes about it."""

    @property
    def app(self) -> App:
        """The app the worker serves: what the run's code looks up (a blueprint's
        functions and task kinds) comes from there, not from globals."""

    def now(self) -> float:
        """The workflow clock (seconds since the epoch)."""

    async def persist(self, entries: Sequence[JournalEntry], settles: bool = False) -> None:
        """Write entries durably; raise LeaseLost if the lease is lost.

        ``settles``: the write records an outcome the workflow must see (a step's result):
        a cancellation by the workflow's own constructs while it is in flight is held off
        until it is written, and then ignored, so the run goes on as a replay would."""

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

    def expect_wakeup(self) -> None:
        """A wait was set up whose condition may already have arrived: look for it."""

    def heartbeat_channel(self, record: Callable[[Any], None]) -> HeartbeatChannel:
        """A channel for one step attempt's heartbeats, delivered on the worker's loop."""

    async def take_signal(
        self,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> SignalRecord | None:
        """Consume a buffered signal (writing ``on_signal(signal)``) or write ``waiting``."""

    async def start_child(self, entry: JournalEntry, child: NewRun) -> JournalEntry:
        """Create a child run with the parent's entry for it; return the stored entry."""
