"""Follow a run live: print each journal change as it happens."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.markup import escape

from ..client import AsyncClient
from ..records import EntryKind, EntryStatus, JournalEntry, RunRecord, RunStatus
from .render import duration, short, stamp

OK = "[green]✓[/green]"
BAD = "[red]✗[/red]"
WAIT = "[blue]⏸[/blue]"


def describe(entry: JournalEntry) -> str | None:
    """One line for a journal entry's current state (None: not worth a line)."""
    name = f"[bold]{escape(entry.name)}[/bold]"
    took = duration(entry.started_at, entry.ended_at)
    took = f" [dim]({took})[/dim]" if took else ""
    shown = escape(short(entry.output))
    error = entry.error_dict()
    message = escape(str(error.get("message"))) if error else ""
    kind, status = entry.kind, entry.status
    if kind is EntryKind.STEP:
        if status is EntryStatus.COMPLETED:
            tries = f" after {entry.attempts} attempts" if entry.attempts > 1 else ""
            return f"  {OK} step {name} → {shown}{tries}{took}"
        if status is EntryStatus.FAILED:
            return f"  {BAD} step {name} failed: {message}"
        if error:  # a failed attempt that will be retried
            retry = "[yellow]↻[/yellow]"
            return f"  {retry} step {name} attempt {entry.attempts} failed ({message}); retrying"
        return None
    if kind is EntryKind.SLEEP:
        if status is EntryStatus.WAITING:
            return f"  {WAIT} sleeping durably until {stamp(entry.wake_at)} UTC"
        return f"  {OK} woke up{took}"
    if kind is EntryKind.SIGNAL:
        if status is EntryStatus.WAITING:
            return f"  {WAIT} waiting for signal {name}"
        if status is EntryStatus.COMPLETED:
            return f"  {OK} signal {name} received: {shown}"
        return f"  [yellow]![/yellow] signal {name} {status.value}"
    if kind is EntryKind.CHILD:
        if status is EntryStatus.WAITING:
            return f"  [blue]↳[/blue] child run {name} started ({entry.child_run_id})"
        if status is EntryStatus.COMPLETED:
            return f"  {OK} child run {name} → {shown}{took}"
        return f"  {BAD} child run {name} {status.value}"
    if kind is EntryKind.WAIT_ANY and status is EntryStatus.COMPLETED:
        return f"  {OK} first of {name}: {shown}"
    if kind is EntryKind.CANCEL or status is EntryStatus.CANCELLED:
        return "  [yellow]■[/yellow] cancellation delivered"
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
