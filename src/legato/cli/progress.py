"""Follow a run live: print each journal change as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from rich.console import Console
from rich.text import Text

from ..client import AsyncClient
from ..client.checks import start_worker_hint
from ..errors import LegatoError
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
    client: AsyncClient,
    run_id: str,
    console: Console,
    poll: float = 0.1,
    timeout: float | None = None,
) -> RunRecord:
    """Print the run's progress until it ends or is parked; return its final record.

    TimeoutError after ``timeout`` seconds (None: no limit), saying where the run stands.
    """
    seen: dict[str, tuple[str, int, str | None]] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
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
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} is still {record.status.value} after {timeout:g} s")
        await asyncio.sleep(poll)


WATCH_SECONDS = 2.0
"""How often a command waiting on a run asks whether a live worker can serve it."""


@contextlib.asynccontextmanager
async def watching_servers(
    client: AsyncClient, run_id: str, console: Console, app_hint: str = "FILE.py"
) -> AsyncIterator[None]:
    """While the body waits on the run, say on ``console`` (once per run) when the run,
    or a child or routed step it waits for, has no live worker able to run it, and name
    the command that starts one. Checked every :data:`WATCH_SECONDS`; a run is named once
    two checks in a row found it unserved (a worker starting beside the command has sent
    its first heartbeat by then)."""

    async def watch() -> None:
        told: set[str] = set()
        before: set[str] = set()
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            try:
                stuck = await client.unserved(run_id)
            except LegatoError:
                continue  # the wait itself reports what is wrong with the store
            now = {run.run_id for run in stuck}
            for run in stuck:
                if run.run_id in told or run.run_id not in before:
                    continue
                told.add(run.run_id)
                what = "it" if run.run_id == run_id else f"run {run.run_id}, which it waits for"
                console.print(
                    f"warning: no live worker can execute {what} (workflow {run.workflow}, "
                    f"queue {run.queue}); start one: {start_worker_hint(run, app_hint)}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
            before = now

    task = asyncio.create_task(watch())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
