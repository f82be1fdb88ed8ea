"""Follow a run live: print each journal change as it happens."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.text import Text

from ..client import AsyncClient
from ..records import EntryKind, EntryStatus, JournalEntry, RunRecord, RunStatus
from .render import duration, short, stamp

OK = ("✓", "green")
BAD = ("✗", "red")
WAIT = ("⏸", "blue")


def describe(entry: JournalEntry) -> Text | None:
    """One line for a journal entry's current state (None: not worth a line).

    Built from styled pieces, never markup, so names and values show as they are."""
    name = (entry.name, "bold")
    took = duration(entry.started_at, entry.ended_at)
    took_part = (f" ({took})", "dim") if took else ""
    shown = short(entry.output)
    error = entry.error_dict()
    message = str(error.get("message")) if error else ""
    kind, status = entry.kind, entry.status
    line = Text.assemble
    if kind is EntryKind.STEP:
        if status is EntryStatus.COMPLETED:
            tries = f" after {entry.attempts} attempts" if entry.attempts > 1 else ""
            return line("  ", OK, " step ", name, f" → {shown}{tries}", took_part)
        if status is EntryStatus.FAILED:
            return line("  ", BAD, " step ", name, f" failed: {message}")
        if error:  # a failed attempt that will be retried
            retry = ("↻", "yellow")
            return line(
                "  ",
                retry,
                " step ",
                name,
                f" attempt {entry.attempts} failed ({message}); retrying",
            )
        return None
    if kind is EntryKind.SLEEP:
        if status is EntryStatus.WAITING:
            return line("  ", WAIT, f" sleeping durably until {stamp(entry.wake_at)}")
        return line("  ", OK, " woke up", took_part)
    if kind is EntryKind.SIGNAL:
        if status is EntryStatus.WAITING:
            return line("  ", WAIT, " waiting for signal ", name)
        if status is EntryStatus.COMPLETED:
            return line("  ", OK, " signal ", name, f" received: {shown}")
        return line("  ", ("!", "yellow"), " signal ", name, f" {status.value}")
    if kind is EntryKind.CHILD:
        if status is EntryStatus.WAITING:
            return line(
                "  ", ("↳", "blue"), " child run ", name, f" started ({entry.child_run_id})"
            )
        if status is EntryStatus.COMPLETED:
            return line("  ", OK, " child run ", name, f" → {shown}", took_part)
        return line("  ", BAD, " child run ", name, f" {status.value}")
    if kind is EntryKind.WAIT_ANY and status is EntryStatus.COMPLETED:
        return line("  ", OK, " first of ", name, f": {shown}")
    if kind is EntryKind.CANCEL or status is EntryStatus.CANCELLED:
        return line("  ", ("■", "yellow"), " cancellation delivered")
    return None


async def follow(
    client: AsyncClient, run_id: str, console: Console, poll: float = 0.1
) -> RunRecord:
    """Print the run's progress until it ends or is parked; return its final record."""
    seen: dict[str, tuple[str, int, str | None]] = {}
    while True:
        record = await client.get(run_id)
        for entry in await client.journal(run_id):
            key = (entry.status.value, entry.attempts, entry.error)
            if seen.get(entry.seq) == key:
                continue
            seen[entry.seq] = key
            line = describe(entry)
            if line:
                console.print(line)
        if record.status.is_terminal or record.status is RunStatus.PARKED:
            return record
        await asyncio.sleep(poll)
