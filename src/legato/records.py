"""Value types shared by every layer: runs, journal entries, statuses.

Frozen dataclasses with explicit fields; the store backends convert rows to and from
these, so nothing above the store ever sees a database row.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass, field
from typing import Any


class RunStatus(enum.StrEnum):
    """Where a run is in its life."""

    PENDING = "pending"  # runnable, not owned by any worker
    RUNNING = "running"  # owned by a worker under a lease
    WAITING = "waiting"  # evicted from memory until a timer, signal or child wakes it
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARKED = "parked"  # stopped for an operator (non-determinism, recovery limit); kept intact

    @property
    def is_terminal(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


class EntryKind(enum.StrEnum):
    """What a journal entry records."""

    STEP = "step"
    SLEEP = "sleep"
    SIGNAL = "signal"
    CHILD = "child"
    WAIT_ANY = "wait_any"
    NOW = "now"
    UUID = "uuid"
    RANDOM = "random"
    PATCH = "patch"
    CANCEL = "cancel"  # where a cancellation (or the run's timeout) reached the workflow
    COMPENSATE = "compensate"  # a compensation run while rolling back (saga)
    DECISION = "decision"  # a choice the run made once and must make the same on replay


class EntryStatus(enum.StrEnum):
    """State of one journal entry."""

    RUNNING = "running"  # a step attempt started (at-least-once: may run again after a crash)
    WAITING = "waiting"  # a durable wait that has not been satisfied yet
    COMPLETED = "completed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"  # the run was cancelled while it waited here
    ABANDONED = "abandoned"  # the workflow itself gave up on this wait or step (a race)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One command of a run, keyed by its position ``seq`` in the workflow code.

    ``seq`` is ``"3"`` for the third command of the workflow's main coroutine and
    ``"4.2"`` for the second command of the task the main coroutine created fourth
    (``asyncio.gather`` members), so it does not depend on which task finished first.
    """

    run_id: str
    seq: str
    kind: EntryKind
    name: str
    status: EntryStatus
    attempts: int = 0
    input: str | None = None  # JSON
    output: str | None = None  # JSON
    error: str | None = None  # JSON object: type, message, traceback
    started_at: float | None = None
    ended_at: float | None = None
    wake_at: float | None = None  # deadline of a sleep or timed wait, or end of a back-off
    child_run_id: str | None = None
    attempt_log: str | None = None  # JSON list: every attempt of a retried step
    progress: str | None = None  # JSON: the last details a step gave legato.heartbeat()

    def error_dict(self) -> dict[str, Any] | None:
        return json.loads(self.error) if self.error else None

    def attempt_list(self) -> list[dict[str, Any]]:
        """Each attempt of a step that failed at least once: attempt, start, end, error."""
        return list(json.loads(self.attempt_log)) if self.attempt_log else []


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run as stored: identity, status, payloads and ownership."""

    run_id: str
    workflow: str
    status: RunStatus
    input: str | None = None  # JSON array of positional arguments
    output: str | None = None
    error: str | None = None
    version: str | None = None
    parent_run_id: str | None = None
    parent_seq: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    wake_at: float | None = None
    wait_signals: tuple[str, ...] = ()
    owner: str | None = None
    lease_epoch: int = 0
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    queue: str = "default"
    priority: int = 0
    concurrency_key: str | None = None
    paused: bool = False  # this run alone is paused (its queue or workflow may be too)
    redrives: int = 0  # times an operator retried or reset it
    detached: bool = False  # a child that is not cancelled with its parent
    deadline_at: float | None = None  # the run's timeout: it fails if not ended by then
    recoveries: int = 0  # times taken over from a worker that died (or stalled) holding it
    # Capabilities a worker's app must have to claim it (a blueprint's functions and kinds).
    requires: tuple[str, ...] = ()
    # The signals its workflow declares (JSON: name -> JSON Schema of the payload, {} for
    # any); None when the workflow declares none, so any name may be sent.
    signals: str | None = None

    def error_dict(self) -> dict[str, Any] | None:
        return json.loads(self.error) if self.error else None

    def declared_signals(self) -> dict[str, dict[str, Any]] | None:
        """The signals its workflow declares, by name, with each payload's JSON Schema
        (``{}``: any JSON); None when the workflow declares none."""
        return json.loads(self.signals) if self.signals is not None else None


@dataclass(frozen=True, slots=True)
class SignalRecord:
    """A signal buffered for a run until a ``wait_for_signal`` consumes it."""

    signal_id: int
    run_id: str
    name: str
    payload: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class Wakeup:
    """What arrived for a run in a worker's memory: a cancel request, buffered signals
    (by name) and the ended children it waits for (the parent's entries for them)."""

    run_id: str
    cancel_requested: bool = False
    signals: frozenset[str] = frozenset()
    children: tuple[JournalEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class ClaimedRun:
    """What a worker gets when it claims a run: the run, its journal and buffered signals."""

    run: RunRecord
    journal: dict[str, JournalEntry] = field(default_factory=dict)
    signals: list[SignalRecord] = field(default_factory=list)
    # The run was still running under an expired lease: its worker died or stalled, and
    # this claim takes it over (a recovery) from ``previous_owner``.
    taken_over: bool = False
    previous_owner: str | None = None


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to create (idempotently, by ``run_id``)."""

    run_id: str
    workflow: str
    input: str | None
    version: str | None = None
    parent_run_id: str | None = None
    parent_seq: str | None = None
    queue: str = "default"
    priority: int = 0
    concurrency_key: str | None = None
    detached: bool = False
    deadline_at: float | None = None
    requires: tuple[str, ...] = ()  # see RunRecord.requires
    signals: str | None = None  # see RunRecord.signals


@dataclass(frozen=True, slots=True)
class RunControl:
    """What a heartbeat tells a worker about a run it holds."""

    epoch: int
    cancel_requested: bool = False
    paused: bool = False


class PauseScope(enum.StrEnum):
    """What a pause applies to."""

    RUN = "run"
    WORKFLOW = "workflow"
    QUEUE = "queue"


@dataclass(frozen=True, slots=True)
class Pause:
    """A paused workflow or queue: none of its runs is scheduled until it is resumed."""

    scope: PauseScope
    name: str
    created_at: float


@dataclass(frozen=True, slots=True)
class QueueLimits:
    """Limits on a named queue, shared by every worker that serves it.

    ``concurrency``: runs of the queue executing at once, across all workers.
    ``key_concurrency``: the same, per ``concurrency_key`` (e.g. one per customer).
    ``rate_limit`` runs may *start* per ``rate_period`` seconds. None: no limit.
    """

    name: str
    concurrency: int | None = None
    key_concurrency: int | None = None
    rate_limit: int | None = None
    rate_period: float | None = None


@dataclass(frozen=True, slots=True)
class Suspension:
    """Why a run leaves memory: its earliest timer, the signals and children it awaits."""

    wake_at: float | None
    signals: tuple[str, ...] = ()
    child_seqs: tuple[str, ...] = ()
    cancel_delivered: bool = False  # a later cancel request must not wake the run again


DEAD_AFTER_SECONDS = 90.0
"""A worker whose last heartbeat is older than this is counted dead (``legato workers
list``, :meth:`legato.AsyncClient.servers_for`). A live worker beats at least every 30 s
when idle, plus up to one tick of its heartbeat loop: older than 90 s means two beats
were missed."""


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A live (or recently live) worker process, and what it can run.

    ``app``, ``queues``, ``workflows`` and ``capabilities`` are what its last heartbeat
    published (empty for a worker of a Legato without apps): the app it serves, the
    queues it claims from, the workflow names it runs (a family as ``prefix*``), and the
    functions and task kinds a blueprint run may require of it.
    """

    worker_id: str
    host: str
    pid: int
    started_at: float
    heartbeat_at: float
    runs: int = 0
    app: str | None = None
    queues: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()

    def alive(self, now: float, dead_after: float = DEAD_AFTER_SECONDS) -> bool:
        """Whether its last heartbeat is at most ``dead_after`` seconds old at ``now``."""
        return now - self.heartbeat_at <= dead_after

    def can_serve(self, run: RunRecord) -> bool:
        """Whether this worker claims ``run`` by what its heartbeat published: it serves
        the run's queue, runs its workflow (by name, or a family as ``prefix*``) and has
        every capability the run requires. A worker of a Legato that published nothing
        (no ``app``) is taken to serve any run of its queues (or of any queue)."""
        if self.app is None:
            return not self.queues or run.queue in self.queues
        if run.queue not in self.queues:
            return False
        named = run.workflow in self.workflows or any(
            w.endswith("*") and run.workflow.startswith(w[:-1]) for w in self.workflows
        )
        return named and set(run.requires) <= set(self.capabilities)


@dataclass(frozen=True, slots=True)
class RunFailure:
    """What a workflow's ``on_failure`` handler is given about the run that failed."""

    run_id: str
    workflow: str
    error_type: str
    message: str
    traceback: str | None = None
    step: str | None = None  # the step whose failure ended the run, if one did
    seq: str | None = None
    step_error: dict[str, Any] | None = None
    input: Any = None  # the run's input as stored: [args, kwargs]
    redrives: int = 0


@dataclass(frozen=True, slots=True)
class BlueprintRecord:
    """A published blueprint: one immutable version of a workflow document.

    ``digest`` identifies the content, so publishing the same text again is a no-op and
    publishing changed text under a version already taken is refused.
    """

    namespace: str
    name: str
    version: str
    digest: str
    source: str  # the document text exactly as published (YAML or JSON)
    published_at: float

    @property
    def ref(self) -> str:
        """``namespace/name:version``, the form every command accepts."""
        return f"{self.namespace}/{self.name}:{self.version}"


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event on the bus: its position (``id``, increasing), when and the envelope."""

    id: int
    published_at: float
    envelope: dict[str, Any]  # the CloudEvents envelope: specversion, id, type, source, ...


_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)


def semver_key(version: str) -> tuple[Any, ...]:
    """A sort key ordering versions by semantic-version precedence.

    ``MAJOR.MINOR.PATCH`` numerically; a prerelease (``1.0.0-rc.1``) sorts before its
    release, its dot-separated parts numerically when numeric, numbers before words;
    build metadata (``+abc``) is ignored. Text that is not a semantic version sorts below
    every semantic version (alphabetically among itself), so "latest" stays well defined.
    """
    match = _SEMVER.match(version)
    if match is None:
        return (0, version)
    major, minor, patch, pre = match.groups()
    if pre is None:
        release: tuple[Any, ...] = (1,)
    else:
        parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
        release = (0, parts)
    return (1, int(major), int(minor), int(patch), release)
