"""Durable waits: sleeps, signals, ``wait_any``, and the wake path into a resident run.

Every durable wait is a :class:`Wait`: a condition (a deadline, signal names, a child)
and a future on the run's loop that the worker resolves when the condition *may* have
arrived, while the run is still in memory. The wait then checks its condition again
(takes the signal, reads the child's result, compares the clock) and either ends or
waits again. So a timer, signal, child or cancel reaches a run whether it is in memory
(woken here) or evicted (its wake condition makes it runnable, and the replay finds the
condition met). A run whose every task waits like this, with nothing else pending, is
idle and may be evicted; see ``RunExecution`` in the worker.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..errors import ConfigurationError, WaitTimeout
from ..payload import json_schema, loads
from ..records import EntryKind, EntryStatus, JournalEntry, SignalRecord, Suspension
from .cancellation import Cancellation
from .loop import RunLoop

T = TypeVar("T")

NOT_YET: Any = object()
"""What a wait's check returns when its condition has not arrived."""


@dataclass
class Wait:
    """One durable wait of a run in memory: what ends it, and the future that wakes it."""

    seq: str
    deadline: float | None
    signals: tuple[str, ...] = ()
    child: bool = False
    dormant: bool = False  # abandoned the first time: only its construct ends it
    future: asyncio.Future[Any] | None = field(default=None, repr=False)

    def wake(self, value: Any = None) -> None:
        """The condition may have arrived (a signal, the child's entry, the clock, a stop)."""
        if self.future is not None and not self.future.done():
            self.future.set_result(value)


@dataclass(frozen=True, slots=True)
class WaitResult:
    """Which condition of :func:`legato.wait_any` fired first, and its value."""

    index: int
    name: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition for :func:`legato.wait_any`: a signal by name or a timer."""

    kind: str  # "signal" | "timer"
    name: str
    seconds: float = 0.0


def _signal_index(conditions: Sequence[Condition], name: str) -> int:
    """The signal condition of that name (a timer may carry the same name)."""
    return next(i for i, c in enumerate(conditions) if c.kind == "signal" and c.name == name)


class Waits(Cancellation):
    """The durable waits of a run."""

    async def _until(
        self, entry: JournalEntry, wait: Wait, check: Callable[[Any], Awaitable[Any]]
    ) -> Any:
        """Wait durably on ``entry`` until ``check`` returns something other than NOT_YET.

        ``check`` gets what the wake carried (a child's entry, or None). The future is
        armed *before* each check, so a wake that arrives while the check is under way is
        not lost: the wait looks again at once. A due stop is delivered right here.
        """
        loop = asyncio.get_running_loop()
        assert isinstance(loop, RunLoop), "workflow code runs on its run's loop"
        self.waits[wait.seq] = wait
        timer: asyncio.TimerHandle | None = None
        woken: Any = None
        try:
            while True:
                self._guard()  # a run leaving this worker checks nothing more
                if self._stop_due():
                    await self._cancel_at(entry)
                wait.future = loop.create_future()
                outcome = await check(woken)
                if outcome is not NOT_YET:
                    return outcome
                if wait.deadline is not None and timer is None:
                    timer = loop.durable_timer(wait.deadline, wait.wake)
                woken = await wait.future
                if timer is not None and timer.when() <= self.host.now():
                    timer = None  # it fired (or is due): a new one if the check says not yet
        except asyncio.CancelledError:
            if not self.cancel_delivered:
                self._abandon(entry)
            raise
        finally:
            self.waits.pop(wait.seq, None)
            if timer is not None:
                timer.cancel()

    async def _dormant(self, entry: JournalEntry) -> None:
        """A wait the workflow gave up on the first time: on replay it never ends by
        itself, so the construct that cancelled it (a race, a timeout) does so again."""
        await self._until(entry, Wait(entry.seq, None, dormant=True), _never)

    def wake_all(self) -> None:
        """Wake every wait (a stop is due: each delivers or re-checks where it stands)."""
        for wait in list(self.waits.values()):
            wait.wake()

    async def sleep(self, seconds: float) -> None:
        await self._enter()
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.SLEEP, "sleep")
        now = self.host.now()
        if entry is None:
            await self._deliver_cancel(seq)
            entry = JournalEntry(
                self.run_id,
                seq,
                EntryKind.SLEEP,
                "sleep",
                EntryStatus.WAITING,
                started_at=now,
                wake_at=now + seconds,
            )
            self.host.persist_nowait([entry])
        if entry.status is EntryStatus.COMPLETED:
            return
        if entry.status is EntryStatus.ABANDONED:
            await self._dormant(entry)
        waiting = entry
        assert waiting.wake_at is not None

        async def check(_: Any) -> Any:
            now = self.host.now()
            if now < waiting.wake_at:  # type: ignore[operator]
                return NOT_YET
            self.host.persist_nowait([replace(waiting, status=EntryStatus.COMPLETED, ended_at=now)])
            return None

        await self._until(waiting, Wait(seq, waiting.wake_at), check)

    def signal_type(self, name: str, kind: Any) -> Any:
        """The type a wait for signal ``name`` validates into: the one it gives, else the
        one the workflow declares. ConfigurationError for a name it does not declare."""
        declared = self.declared_signals
        if declared is None:
            return kind
        if name not in declared:
            raise ConfigurationError(
                f"run {self.run_id} ({self.workflow_name}) waits for signal {name!r}, which "
                f"its workflow does not declare (it declares {_names(declared)}): add it to "
                "@legato.workflow(signals=...), or no client may send it"
            )
        return kind if kind is not Any else declared[name]

    async def wait_for_signal(self, name: str, timeout: float | None, kind: Any = Any) -> Any:
        await self._enter()
        kind = self.signal_type(name, kind)
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.SIGNAL, name)
        if entry is not None:
            if entry.status is EntryStatus.COMPLETED:
                return loads(entry.output, kind, f"signal {name!r}")
            if entry.status is EntryStatus.TIMED_OUT:
                raise WaitTimeout(f"no signal {name!r} arrived before the timeout")
            if entry.status is EntryStatus.ABANDONED:
                await self._dormant(entry)
        else:
            await self._deliver_cancel(seq)
        now = self.host.now()
        schema = json_schema(kind)
        waiting = entry or JournalEntry(
            self.run_id,
            seq,
            EntryKind.SIGNAL,
            name,
            EntryStatus.WAITING,
            # What a client checks a payload against while the run waits here.
            input=json.dumps({"type": schema}) if schema else None,
            started_at=now,
            wake_at=now + timeout if timeout is not None else None,
        )

        def completed(signal: SignalRecord) -> JournalEntry:
            return replace(
                waiting,
                status=EntryStatus.COMPLETED,
                output=signal.payload,
                ended_at=self.host.now(),
            )

        async def check(_: Any) -> Any:
            # Checked before the clock: a signal that arrived by the deadline still counts.
            signal = await self.host.take_signal(waiting, (name,), completed)
            if signal is not None:
                return loads(signal.payload, kind, f"signal {name!r}")
            now = self.host.now()
            if waiting.wake_at is not None and now >= waiting.wake_at:
                await self.host.persist(
                    [replace(waiting, status=EntryStatus.TIMED_OUT, ended_at=now)]
                )
                raise WaitTimeout(f"no signal {name!r} arrived before the timeout")
            return NOT_YET

        return await self._until(waiting, Wait(seq, waiting.wake_at, signals=(name,)), check)

    async def wait_any(self, conditions: Sequence[Condition], timeout: float | None) -> WaitResult:
        label = "|".join(f"{c.kind}:{c.name}" for c in conditions)
        await self._enter()
        for c in conditions:
            if c.kind == "signal":
                self.signal_type(c.name, Any)  # a declaring workflow waits for its own only
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.WAIT_ANY, label)
        if entry is not None:
            if entry.status is EntryStatus.COMPLETED:
                recorded = json.loads(entry.output or "{}")
                index = recorded["index"]
                return WaitResult(index, conditions[index].name, recorded.get("value"))
            if entry.status is EntryStatus.TIMED_OUT:
                raise WaitTimeout(f"none of {label} happened before the timeout")
            if entry.status is EntryStatus.ABANDONED:
                await self._dormant(entry)
        else:
            await self._deliver_cancel(seq)
        now = self.host.now()
        if entry is not None:
            deadlines = json.loads(entry.input or "[]")
        else:
            deadlines = [now + c.seconds if c.kind == "timer" else None for c in conditions]
            if timeout is not None:
                deadlines.append(now + timeout)
        timed = [d for d in deadlines if d is not None]
        waiting = entry or JournalEntry(
            self.run_id,
            seq,
            EntryKind.WAIT_ANY,
            label,
            EntryStatus.WAITING,
            input=json.dumps(deadlines),
            started_at=now,
            wake_at=min(timed) if timed else None,
        )
        names = [c.name for c in conditions if c.kind == "signal"]

        def won(index: int, value: Any) -> JournalEntry:
            return replace(
                waiting,
                status=EntryStatus.COMPLETED,
                output=json.dumps({"index": index, "value": value}),
                ended_at=self.host.now(),
            )

        def on_signal(signal: SignalRecord) -> JournalEntry:
            value: Any = json.loads(signal.payload) if signal.payload else None
            return won(_signal_index(conditions, signal.name), value)

        first = [True]

        async def check(_: Any) -> Any:
            if names:
                signal = await self.host.take_signal(waiting, names, on_signal)
                if signal is not None:
                    index = _signal_index(conditions, signal.name)
                    value = json.loads(signal.payload) if signal.payload else None
                    return WaitResult(index, signal.name, value)
            elif first[0]:
                self.host.persist_nowait([waiting])
            first[0] = False
            now = self.host.now()
            for index, deadline in enumerate(deadlines[: len(conditions)]):
                if deadline is not None and now >= deadline:
                    await self.host.persist([won(index, None)])
                    return WaitResult(index, conditions[index].name, None)
            if timeout is not None and now >= deadlines[-1]:
                await self.host.persist(
                    [replace(waiting, status=EntryStatus.TIMED_OUT, ended_at=now)]
                )
                raise WaitTimeout(f"none of {label} happened before the timeout")
            return NOT_YET

        wait = Wait(seq, waiting.wake_at, signals=tuple(names))
        result: WaitResult = await self._until(waiting, wait, check)
        return result

    async def first_done(self, tasks: Sequence[asyncio.Task[Any]]) -> int:
        """Wait until one of ``tasks`` (tasks of this run) ends; return its index.

        Which task ends first can differ on replay: callers journal the choice they act on.
        """
        for index, task in enumerate(tasks):
            if task.done():
                return index
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        return next(i for i, task in enumerate(tasks) if task in done)

    def suspension(self) -> Suspension:
        deadlines = [w.deadline for w in self.waits.values() if w.deadline is not None]
        if self.deadline is not None and not self.cancel_delivered:
            deadlines.append(self.deadline)  # wake to stop the run at its timeout
        signals = sorted({s for w in self.waits.values() for s in w.signals})
        children = tuple(seq for seq, w in self.waits.items() if w.child)
        return Suspension(
            min(deadlines) if deadlines else None,
            tuple(signals),
            children,
            cancel_delivered=self.cancel_delivered,
        )


async def _never(_: Any) -> Any:
    return NOT_YET


def _names(names: Any) -> str:
    return ", ".join(repr(n) for n in sorted(names)) or "none"
