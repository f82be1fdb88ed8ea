"""Positions and journal matching: the state every part of the workflow context shares.

Every command gets a position ``seq`` from the task that issues it (see runtime/loop.py),
so positions do not depend on which parallel step finished first. A command found in the
journal is replayed; one that does not match it is non-determinism and parks the run; one
past the end of the journal is new and is executed and recorded.

The context is split by seam, each part a class in the chain
``ContextBase <- Cancellation <- Waits <- Steps <- Children <- Compensation <-
WorkflowContext``; only this base holds fields.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import LeaseLost, NonDeterminismError
from ..records import EntryKind, EntryStatus, JournalEntry
from .diagnostics import caller_location
from .host import RuntimeHost
from .tasks import TaskState, task_states

if TYPE_CHECKING:
    from .waits import Wait

TIMEOUT = "timeout"
"""The reason recorded when a run is stopped by its own timeout rather than a cancel."""


def seq_key(seq: str) -> tuple[int, ...]:
    """Order positions numerically: "10" after "9", "3.2" after "3"."""
    return tuple(int(part) for part in seq.split("."))


MismatchHint = Callable[[str, JournalEntry, EntryKind, str], str]
"""(seq, recorded entry, issued kind, issued name) -> the whole non-determinism message."""


@dataclass
class ContextBase:
    """State of one run while it is in a worker's memory."""

    run_id: str
    workflow_name: str
    journal: dict[str, JournalEntry]
    host: RuntimeHost
    cancel_requested: bool = False
    tasks: weakref.WeakSet[asyncio.Task[Any]] = field(default_factory=weakref.WeakSet)
    visited: set[str] = field(default_factory=set)
    waits: dict[str, Wait] = field(default_factory=dict)
    abandoned: set[str] = field(default_factory=set)  # prefixes of tasks it cancelled
    evicting: bool = False  # leaving memory (suspended, released): commands raise Cancelled
    lost: bool = False  # no longer owned by this worker: commands raise LeaseLost
    cancel_delivered: bool = False
    nondeterminism: NonDeterminismError | None = None
    deadline: float | None = None  # the run's timeout, as a time
    cancel_reason: str = "cancel"  # or TIMEOUT once the deadline was delivered
    redrives: int = 0  # new children of a redriven run get fresh ids
    started_children: bool = False
    compensating: bool = False  # a rollback is under way: no cancel or timeout stops it
    rollback_interrupted: bool = False  # the worker stopped mid-rollback: not an ending
    mismatch_hint: MismatchHint | None = None  # a workflow family's own wording
    # The signals its workflow declares (name -> payload type), None: it declares none.
    declared_signals: dict[str, Any] | None = None
    # Weak: the task's TaskState (held by a WeakKeyDictionary keyed by the task) refers to
    # this context, so a strong reference back would keep every finished run alive.
    root_ref: weakref.ref[asyncio.Task[Any]] | None = None

    # -- tasks ---------------------------------------------------------------------------
    def bind_root(self, task: asyncio.Task[Any]) -> None:
        """Make ``task`` the run's main task (prefix ``""``)."""
        task_states[task] = TaskState(self, "")  # type: ignore[arg-type]
        self.tasks.add(task)
        self.root_ref = weakref.ref(task)

    def root(self) -> asyncio.Task[Any] | None:
        return self.root_ref() if self.root_ref is not None else None

    def task_done(self, task: asyncio.Task[Any]) -> None:
        """A task of the run ended.

        A task the workflow cancelled (a losing branch of a race, the siblings of a failed
        branch) may have journalled more before its cancel than it reaches on replay,
        where the cancel can come sooner: its positions are not owed on replay.
        """
        if task.cancelled() and not self.evicting and not self.lost:
            state = task_states.get(task)
            if state is not None and state.prefix:
                self.abandoned.add(state.prefix)

    def _state(self) -> TaskState:
        task = asyncio.current_task()
        state = task_states.get(task) if task is not None else None
        if state is None or state.ctx is not self:
            raise RuntimeError("Legato command issued outside its workflow's tasks")
        return state

    # -- positions and matching ------------------------------------------------------------
    def _next_seq(self) -> str:
        state = self._state()
        state.counter += 1
        return f"{state.prefix}{state.counter}"

    def _guard(self) -> None:
        """No command of a run that left this worker may do anything."""
        if self.lost:
            raise LeaseLost(self.run_id)
        if self.evicting:
            raise asyncio.CancelledError("run is leaving this worker's memory")
        if self.nondeterminism is not None:
            raise self.nondeterminism

    async def _enter(self) -> None:
        """Before an async command: a run leaving this worker refuses it, once per task by
        raising, then by never returning. A workflow that swallows the refusal in a loop
        (``except CancelledError: continue``) so waits instead of spinning the worker's
        loop, and is dropped when the run unwinds."""
        if not (self.lost or self.evicting):
            return
        state = self._state()
        if not state.refused:
            state.refused = True
            self._guard()  # raises
        await asyncio.get_running_loop().create_future()

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
            if self.mismatch_hint is not None:
                message = self.mismatch_hint(seq, entry, kind, name)
            else:
                message = (
                    f"run {self.run_id} ({self.workflow_name}): at position {seq} the journal "
                    f"recorded {entry.kind.value} {entry.name!r}, but the code now issues "
                    f"{kind.value} {name!r} at {caller_location()}. The workflow code changed "
                    "under a running workflow: deploy code that matches, or guard the change "
                    "with legato.patched(...). The run is parked until then."
                )
            self.nondeterminism = NonDeterminismError(message)
            raise self.nondeterminism
        return entry

    def _stopped_how(self) -> str:
        return "stopped by its timeout" if self.cancel_reason == TIMEOUT else "cancelled"

    def unvisited(self) -> list[JournalEntry]:
        """Journal entries the code never reached (after a successful end: non-determinism)."""
        return [
            e
            for seq, e in self.journal.items()
            if seq not in self.visited
            and e.kind is not EntryKind.PATCH
            and not any(seq.startswith(prefix) for prefix in self.abandoned)
        ]

    def has_children(self) -> bool:
        """Did this run start child runs (or routed steps)? Only then is there any to cancel."""
        return self.started_children or any(e.child_run_id for e in self.journal.values())

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
