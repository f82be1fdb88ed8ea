"""Offline replay: would this code still replay that run's journal?

A code change can break runs that are already in flight (a step inserted, renamed or
removed). Those runs only find out when a worker replays them, and then they are parked.
This module answers the question *before* deploying: it replays a run's exported
:class:`History` against the workflow code in this process, exactly as a worker would
(same :class:`WorkflowContext`, same positions), but through a :class:`ReplayHost` that
never performs a side effect. Nothing is written, no step runs, no child starts.

Where the recorded journal ends (the *frontier*) the host blocks forever instead of doing
the work; the replay then stops and reports the run as ``in_progress``. The history file
format (``legato-history/1``) is documented on :class:`History`.
"""

from __future__ import annotations

import asyncio
import enum
import json
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar

from ..apps import DEFAULT_APP, App
from ..errors import InvalidInput, PayloadError, WorkflowNotFound
from ..payload import dumps
from ..records import (
    EntryKind,
    EntryStatus,
    JournalEntry,
    NewRun,
    RunRecord,
    RunStatus,
    SignalRecord,
)
from .context import WorkflowContext
from .definitions import Step, Workflow
from .host import HeartbeatChannel, StepInfo
from .loop import RunLoop

HISTORY_FORMAT = "legato-history/1"

MAX_TURNS = 10_000
"""Event-loop turns a replay may take before it is reported inconclusive."""

MAX_SECONDS = 30.0
"""Wall-clock seconds a replay may take before it is reported inconclusive."""


Outcome = Literal["completed", "failed", "cancelled", "in_progress"]

_R = TypeVar("_R")


# -- the history document ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class History:
    """A run and its journal, as exported for an offline replay check.

    ``to_json()`` writes this document (keys in this order; payload fields ``input``,
    ``output`` and ``error`` stay the JSON *text* the store holds, so a replay decodes
    exactly the bytes a worker would)::

        {
          "format": "legato-history/1",
          "run": {"run_id": ..., "workflow": ..., "status": "completed", "input": "[[5], {}]",
                  ...every field of legato.RunRecord; enums as their values,
                  wait_signals as a list...},
          "journal": [{"run_id": ..., "seq": "1", "kind": "step", "name": "charge",
                       "status": "completed", "attempts": 1, "input": ..., "output": "42",
                       ...every field of legato.JournalEntry...}, ...]
        }

    Reading ignores keys it does not know (so later 1.x exports still load) and fills
    optional fields with their defaults; a different ``format`` is refused.
    """

    run: RunRecord
    journal: list[JournalEntry]

    def to_json(self) -> str:
        """The history as a ``legato-history/1`` JSON document."""
        document = {
            "format": HISTORY_FORMAT,
            "run": _plain(self.run),
            "journal": [_plain(entry) for entry in self.journal],
        }
        return json.dumps(document, indent=2)

    @classmethod
    def from_json(cls, text: str) -> History:
        """Parse a ``legato-history/1`` document (InvalidInput if it is not one)."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"history is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise InvalidInput("history must be a JSON object with format, run, journal")
        found = document.get("format")
        if found != HISTORY_FORMAT:
            raise InvalidInput(
                f"history format is {found!r}, expected {HISTORY_FORMAT!r}: export it again "
                "with this version of Legato"
            )
        raw_run, raw_journal = document.get("run"), document.get("journal")
        if not isinstance(raw_run, dict) or not isinstance(raw_journal, list):
            raise InvalidInput("history needs a 'run' object and a 'journal' array")
        run = _build(RunRecord, raw_run, "run", _RUN_CONVERTERS)
        journal = [
            _build(JournalEntry, raw, f"journal entry {i}", _ENTRY_CONVERTERS)
            for i, raw in enumerate(raw_journal)
        ]
        seen: set[str] = set()
        for entry in journal:
            if entry.run_id != run.run_id:
                raise InvalidInput(
                    f"history of run {run.run_id!r} has a journal entry of run "
                    f"{entry.run_id!r} (position {entry.seq}): the file mixes two runs"
                )
            if entry.seq in seen:
                raise InvalidInput(
                    f"history of run {run.run_id!r} has two journal entries at position "
                    f"{entry.seq}: the file is damaged; export it again"
                )
            seen.add(entry.seq)
        return cls(run, journal)

    def save(self, path: str | Path) -> None:
        """Write the history to ``path`` as JSON."""
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a history written by :meth:`save` (or ``legato`` export)."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read history file {path}: {exc}") from exc
        try:
            return cls.from_json(text)
        except InvalidInput as exc:
            raise InvalidInput(f"{path}: {exc}") from exc


def _plain(record: Any) -> dict[str, Any]:
    """Like ``dataclasses.asdict``, with enums as their values and tuples as lists."""
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if isinstance(value, enum.Enum):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


_RUN_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "status": RunStatus,
    "wait_signals": tuple,
    "requires": tuple,
}
_ENTRY_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "kind": EntryKind,
    "status": EntryStatus,
}


def _build(
    cls: Callable[..., _R],
    raw: dict[str, Any],
    what: str,
    converters: dict[str, Callable[[Any], Any]],
) -> _R:
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    try:
        for key, value in raw.items():
            if key not in names:
                continue
            convert = converters.get(key)
            values[key] = convert(value) if convert is not None and value is not None else value
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"history {what} does not fit {cls.__name__}: {exc}") from exc


# -- the report ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ReplayReport:
    """What replaying one history against the current code found.

    ``outcome`` is how far the replay got: the workflow ``completed``, ``failed`` (raised),
    was ``cancelled`` (the journal records the cancellation), or is ``in_progress``: the
    replay stopped before the workflow ended (at the end of the journal, at a mismatch, or
    at the safety bound). ``entries_checked`` counts the journal entries the code reached
    and matched. ``problem`` says what is wrong when ``ok`` is False.
    """

    ok: bool
    run_id: str
    workflow: str
    entries_checked: int
    problem: str | None
    outcome: Outcome

    def summary(self) -> str:
        """One line for a terminal: ``ok``/``FAIL``, run, workflow, what was checked."""
        head = "ok  " if self.ok else "FAIL"
        line = (
            f"{head} {self.run_id} ({self.workflow}): {self.entries_checked} journal "
            f"entries replayed, {self.outcome}"
        )
        return line if self.problem is None else f"{line}\n     {self.problem}"


# -- the side-effect-free host -------------------------------------------------------------
class _NoOp:
    def cancel(self) -> None:
        pass


class ReplayHost:
    """A :class:`legato.runtime.host.RuntimeHost` that never performs a side effect.

    Writes are dropped. Anything that would need the outside world (run a step, take a
    signal that is not in the journal, start a child, wait between attempts) blocks
    forever on a future kept in :attr:`frontier`, so the replay can tell "reached the end
    of the recorded history" from "still busy".
    """

    def __init__(self, history: History, app: App) -> None:
        self.app = app  # what a replayed blueprint's calls are looked up in
        self.worker_id = "replay"
        stamps = [t for e in history.journal for t in (e.started_at, e.ended_at) if t is not None]
        # The clock stands still at the last recorded moment: a timer recorded as pending
        # stays pending, as it was when the history was taken.
        self._now = max(stamps) if stamps else history.run.created_at
        self.frontier: set[asyncio.Future[Any]] = set()

    def now(self) -> float:
        return self._now

    async def persist(self, entries: Sequence[JournalEntry], settles: bool = False) -> None:
        pass

    def persist_nowait(self, entries: Sequence[JournalEntry]) -> None:
        pass

    def persist_later(self, entries: Sequence[JournalEntry], delay: float) -> _NoOp:
        return _NoOp()

    async def _block_forever(self) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.frontier.add(future)
        try:
            return await future
        finally:
            self.frontier.discard(future)

    async def execute_step(
        self, step: Step[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], info: StepInfo
    ) -> Any:
        return await self._block_forever()

    async def backoff(self, delay: float) -> None:
        await self._block_forever()

    def heartbeat_channel(self, record: Callable[[Any], None]) -> HeartbeatChannel:
        return HeartbeatChannel(asyncio.get_running_loop(), lambda _: None)

    def expect_wakeup(self) -> None:
        pass  # nothing arrives during a replay

    async def take_signal(
        self,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> SignalRecord | None:
        # Returning None would let a timed-out wait fire now; blocking keeps the run
        # exactly where the history left it.
        result: SignalRecord | None = await self._block_forever()
        return result

    async def start_child(self, entry: JournalEntry, child: NewRun) -> JournalEntry:
        result: JournalEntry = await self._block_forever()
        return result


class _TimerClock:
    """The clock of a replayed run's loop timers."""

    def __init__(self, start: float) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance_to(self, when: float) -> None:
        self._now = max(self._now, when)


# -- replaying -----------------------------------------------------------------------------
def replay(
    history: History, workflow: Workflow[Any, Any] | None = None, *, app: App | None = None
) -> ReplayReport:
    """Replay ``history`` on a fresh event loop (for scripts, tests and the CLI)."""
    return asyncio.run(replay_history(history, workflow, app=app))


async def replay_history(
    history: History,
    workflow: Workflow[Any, Any] | None = None,
    *,
    app: App | None = None,
    max_turns: int = MAX_TURNS,
    max_seconds: float = MAX_SECONDS,
) -> ReplayReport:
    """Replay ``history`` against ``workflow`` (default: the one ``app``, by default the
    default app, registers under the run's workflow name) without side effects, and
    report whether the code still matches.

    Not ok when the code issues a command that differs from the journal, when the workflow
    ends without reaching entries its journal has, when it now raises although the
    recorded run did not fail (resuming the run would fail it), or when the replay does
    not settle within ``max_turns`` loop turns / ``max_seconds`` (inconclusive).
    """
    run = history.run
    app = app or DEFAULT_APP
    wf = workflow if workflow is not None else app.lookup(run.workflow)
    if wf is None:
        raise WorkflowNotFound(
            f"workflow {run.workflow!r} of run {run.run_id} is not registered in app "
            f"{app.name!r}: import the module that defines it (legato replay --app ...) or "
            "pass workflow= explicitly"
        )
    return await _replay(history, wf, app, max_turns, max_seconds)


async def _replay(
    history: History, wf: Workflow[Any, Any], app: App, max_turns: int, max_seconds: float
) -> ReplayReport:
    run = history.run
    host = ReplayHost(history, app)
    # The replay drives the run's loop itself, turn by turn: no requests needed. Its
    # timers keep a clock of their own, which moves on only for asyncio timers that
    # abandoned a wait; durable waits read the history's clock, which stands still.
    timers = _TimerClock(host.now())
    run_loop = RunLoop(timers.now, lambda: None, lambda _when: None)  # type: ignore[abstract]
    ctx = WorkflowContext(
        run_id=run.run_id,
        workflow_name=run.workflow,
        journal={entry.seq: entry for entry in history.journal},
        host=host,
        # A cancellation recorded in the journal is still replayed (the context raises
        # it there); one merely requested has not happened yet, so it is not simulated.
        cancel_requested=False,
        deadline=run.deadline_at,
        redrives=run.redrives,
    )
    run_loop.ctx = ctx
    ctx.declared_signals = wf.signals

    def report(outcome: Outcome, problem: str | None = None) -> ReplayReport:
        checked = len(ctx.visited.intersection(ctx.journal))
        if ctx.nondeterminism is not None:
            checked -= 1  # the entry the code disagreed with was reached, not matched
        return ReplayReport(problem is None, run.run_id, wf.name, checked, problem, outcome)

    try:
        args, kwargs = wf.decode_args(json.loads(run.input or "[[], {}]"))
    except PayloadError as exc:
        return report("failed", _raises_problem(run, wf, exc))

    # As a worker runs it, rollback included: the journal has the compensations too.
    root: asyncio.Task[Any] = asyncio.Task(ctx.run_workflow(wf.fn, args, kwargs), loop=run_loop)
    ctx.bind_root(root)
    try:
        settled = await _drive(ctx, timers, run_loop, max_turns, max_seconds)
        return _judge(history, wf, ctx, root, settled, report, max_turns, max_seconds)
    finally:
        alive = ctx.cancel_tasks()
        for _ in range(MAX_TURNS):
            if all(task.done() for task in alive):
                break
            run_loop.run_turn()
        for task in alive:
            if task.done() and not task.cancelled():
                task.exception()
        ctx.retrieve_root()
        run_loop.close()


async def _drive(
    ctx: WorkflowContext,
    timers: _TimerClock,
    run_loop: RunLoop,
    max_turns: int,
    max_seconds: float,
) -> bool:
    """Let the run go until it settles (True) or cannot (False).

    Settled: nothing is ready on the run's loop and every timer left belongs to a durable
    wait. The replay clock stands still, so an asyncio timer of the workflow's own
    (``asyncio.sleep``) would never fire: the replay cannot tell where the run stands.
    Except where the journal says such a timer did fire: a wait it gave up on (recorded
    as abandoned) is waiting for it, so the timers' clock moves on to that timer (durable
    waits, on the history's clock, do not see it move).
    """
    deadline = time.monotonic() + max_seconds
    for _ in range(max_turns):
        run_loop.run_turn()
        if ctx.nondeterminism is not None:
            return True
        if not run_loop.has_ready():
            if run_loop.only_durable_timers():
                return True
            due = run_loop.next_plain_timer()
            if due is None or not any(w.dormant for w in ctx.waits.values()):
                return False
            timers.advance_to(due)
            continue
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0)
    return False


def _judge(
    history: History,
    wf: Workflow[Any, Any],
    ctx: WorkflowContext,
    root: asyncio.Task[Any],
    settled: bool,
    report: Callable[[Outcome, str | None], ReplayReport],
    max_turns: int,
    max_seconds: float,
) -> ReplayReport:
    """Turn the state the replay stopped in into a report."""
    run = history.run
    if ctx.nondeterminism is not None:
        return report("in_progress", str(ctx.nondeterminism))
    if not settled:
        return report(
            "in_progress",
            f"run {run.run_id} ({wf.name}): inconclusive, the replay did not settle within "
            f"{max_turns} event-loop turns or {max_seconds:g} s. The workflow code probably "
            "awaits something outside Legato (asyncio.sleep, a queue, I/O); use "
            "legato.sleep and steps instead so replays are deterministic.",
        )
    if not root.done():
        return report("in_progress", None)  # at the end of the recorded history
    if root.cancelled() or isinstance(root.exception(), asyncio.CancelledError):
        return report("cancelled", None)
    exc = root.exception()
    outcome: Outcome = "failed" if exc is not None else "completed"
    leftover = ctx.unvisited()
    if leftover:
        first = leftover[0]
        if ctx.mismatch_hint is not None:  # nothing was issued in the entry's place
            return report(outcome, ctx.mismatch_hint(first.seq, first, first.kind, ""))
        return report(
            outcome,
            f"run {run.run_id} ({wf.name}): the workflow {outcome} without reaching "
            f"{first.kind.value} {first.name!r} at position {first.seq}, which its journal "
            "has. The workflow code changed under a running workflow: deploy code that "
            "matches, or guard the change with legato.patched(...).",
        )
    if exc is None:
        try:
            dumps(root.result(), f"result of workflow {wf.name!r}")
        except PayloadError as unstorable:
            exc, outcome = unstorable, "failed"
    if exc is not None and run.status is not RunStatus.FAILED:
        return report(outcome, _raises_problem(run, wf, exc))
    return report(outcome, None)


def _raises_problem(run: RunRecord, wf: Workflow[Any, Any], exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    return (
        f"run {run.run_id} ({wf.name}): replaying its journal, the workflow now raises "
        f"{type(exc).__qualname__}: {exc}{where}, but the recorded run is {run.status.value}. "
        "Resuming it with this code would fail it: fix the code, or guard the change with "
        "legato.patched(...)."
    )


__all__ = [
    "HISTORY_FORMAT",
    "History",
    "ReplayHost",
    "ReplayReport",
    "replay",
    "replay_history",
]
