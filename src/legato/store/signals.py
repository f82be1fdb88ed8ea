"""Signals: sent by clients, taken by the runs that wait for them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from ..errors import RunEnded, RunNotFound
from ..records import JournalEntry, RunStatus, SignalRecord, Wakeup
from .base import Lease
from .journal import holds, upsert
from .ops import WORK, Op, arrived, count, one, rows, status_changed
from .plumbing import Plumbing
from .rows import entry_from_row, report_write_failure, signal_from_row, wakeups_of


def send_signal(run_id: str, name: str, payload: str | None, now: float) -> Op[bool]:
    # The run's row is locked first (PostgreSQL): a run suspending at the same moment
    # either sees this signal or is woken by it.
    row = yield one("lock_run", run_id=run_id)
    if row is None:
        raise RunNotFound(run_id)
    if RunStatus(row["status"]).is_terminal:
        raise RunEnded(f"run {run_id!r} has ended ({row['status']}); it can take no more signals")
    yield count("insert_signal", run_id=run_id, name=name, payload=payload, now=now)
    woke = yield count("wake_for_signal", run_id=run_id, name=name, now=now)
    if woke:
        yield WORK
        yield status_changed(run_id, RunStatus.PENDING.value)
    yield arrived(run_id)  # the run may be in a worker's memory, waiting
    return bool(woke)


def take_signal(
    lease: Lease,
    waiting: JournalEntry,
    names: Sequence[str],
    on_signal: Callable[[SignalRecord], JournalEntry],
) -> Op[tuple[bool, SignalRecord | None]]:
    if not (yield from holds(lease)):
        return False, None
    row = yield one("oldest_signal", run_id=lease.run_id, names=list(names))
    signal = signal_from_row(row) if row else None
    if signal is not None:
        yield count("consume_signal", seq=waiting.seq, signal_id=signal.signal_id)
        yield from upsert(lease, on_signal(signal))
    else:
        yield from upsert(lease, waiting)
    return True, signal


def consume_signal(lease: Lease, signal: SignalRecord, entry: JournalEntry) -> Op[bool]:
    if not (yield from holds(lease)):
        return False
    yield count("consume_signal", seq=entry.seq, signal_id=signal.signal_id)
    yield from upsert(lease, entry)
    return True


def resident_wakeups(
    run_ids: Sequence[str], signal_runs: Sequence[str], child_waits: Sequence[tuple[str, str]]
) -> Op[list[Wakeup]]:
    cancels = {r["run_id"] for r in (yield rows("resident_cancels", run_ids=list(run_ids)))}
    signals: dict[str, set[str]] = {}
    if signal_runs:
        for r in (yield rows("resident_signals", run_ids=list(signal_runs))):
            signals.setdefault(r["run_id"], set()).add(r["name"])
    children: dict[str, list[JournalEntry]] = {}
    if child_waits:
        found = yield rows(
            "resident_children",
            runs=[run for run, _ in child_waits],
            seqs=[seq for _, seq in child_waits],
        )
        for r in found:
            entry = entry_from_row(r)
            children.setdefault(entry.run_id, []).append(entry)
    return wakeups_of(run_ids, cancels, signals, children)


class Signals(Plumbing):
    async def send_signal(self, run_id: str, name: str, payload: str | None, now: float) -> None:
        """Buffer a signal and wake the run if it waits for it.

        RunNotFound if there is no such run, RunEnded if it has ended.
        """
        await self._write(partial(send_signal, run_id, name, payload, now))

    async def take_signal(
        self,
        lease: Lease,
        waiting: JournalEntry,
        names: Sequence[str],
        on_signal: Callable[[SignalRecord], JournalEntry],
    ) -> tuple[bool, SignalRecord | None]:
        """Consume the oldest buffered signal named in ``names``, or record ``waiting``.

        With a signal: ``on_signal(signal)`` is written and the signal is marked consumed,
        atomically. Without: ``waiting`` is written. Returns (lease still held, signal).
        """
        result: tuple[bool, SignalRecord | None] = await self._write(
            partial(take_signal, lease, waiting, names, on_signal)
        )
        return result

    def consume_signal_nowait(
        self,
        lease: Lease,
        signal: SignalRecord,
        entry: JournalEntry,
        on_failure: Callable[[BaseException | None], None],
    ) -> None:
        """Queue: mark ``signal`` consumed by ``entry`` and write ``entry`` (fenced).

        For a signal the worker already knows is buffered for a run it owns; see
        :meth:`Journal.record_nowait` for ``on_failure``.
        """
        fut = self._submit(partial(consume_signal, lease, signal, entry))
        fut.add_done_callback(report_write_failure(on_failure))

    async def resident_wakeups(
        self,
        run_ids: Sequence[str],
        signal_runs: Sequence[str],
        child_waits: Sequence[tuple[str, str]],
    ) -> list[Wakeup]:
        """What arrived for runs held in memory: cancel requests (of ``run_ids``), buffered
        signals (of ``signal_runs``) and ended children at ``(run_id, seq)``. A read."""
        result: list[Wakeup] = await self._read(
            partial(resident_wakeups, run_ids, signal_runs, child_waits)
        )
        return result
