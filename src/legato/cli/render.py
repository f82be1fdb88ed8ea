"""Tables and JSON for runs and journals."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from ..records import JournalEntry, RunRecord


def make_console(stderr: bool = False) -> Console:
    """A console that is wide enough for tables when output goes to a file or a pipe."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 140)


_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "parked": "magenta",
    "cancelled": "yellow",
    "running": "cyan",
    "waiting": "blue",
    "pending": "white",
    "timed_out": "yellow",
}


def stamp(value: float | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    ms = (end - start) * 1000
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def short(text: str | None, width: int = 32) -> str:
    if text is None:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def styled(status: str) -> str:
    style = _STATUS_STYLE.get(status, "white")
    return f"[{style}]{status}[/{style}]"


def _json_or_none(text: str | None) -> Any:
    return json.loads(text) if text else None


def run_dict(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "workflow": run.workflow,
        "status": run.status.value,
        "version": run.version,
        "input": _json_or_none(run.input),
        "output": _json_or_none(run.output),
        "error": run.error_dict(),
        "parent_run_id": run.parent_run_id,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "wake_at": run.wake_at,
        "waiting_for_signals": list(run.wait_signals),
        "owner": run.owner,
        "lease_epoch": run.lease_epoch,
        "cancel_requested": run.cancel_requested,
        "paused": run.paused,
        "redrives": run.redrives,
        "recoveries": run.recoveries,
        "queue": run.queue,
        "deadline_at": run.deadline_at,
        "requires": list(run.requires),
    }


def entry_dict(entry: JournalEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "kind": entry.kind.value,
        "name": entry.name,
        "status": entry.status.value,
        "attempts": entry.attempts,
        "input": _json_or_none(entry.input),
        "output": _json_or_none(entry.output),
        "error": entry.error_dict(),
        "started_at": entry.started_at,
        "ended_at": entry.ended_at,
        "wake_at": entry.wake_at,
        "child_run_id": entry.child_run_id,
        "attempt_log": entry.attempt_list(),
        "progress": _json_or_none(entry.progress),
    }


def runs_table(runs: list[RunRecord]) -> Table:
    table = Table(title=f"{len(runs)} run(s)")
    for column in ("run id", "workflow", "status", "created", "duration"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for run in runs:
        table.add_row(
            run.run_id,
            run.workflow,
            styled(run.status.value),
            stamp(run.created_at),
            duration(run.created_at, run.ended_at),
        )
    return table


def journal_table(entries: list[JournalEntry]) -> Table:
    table = Table(title="journal")
    for column in ("#", "kind", "name", "status", "tries", "time", "input", "output / error"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    for e in entries:
        error = e.error_dict()
        result = f"[red]{short(error.get('message'))}[/red]" if error else short(e.output)
        if e.child_run_id:
            result = f"run {e.child_run_id} {result}"
        if e.progress and e.status.value == "running":
            result = f"progress {short(e.progress)}"
        table.add_row(
            e.seq,
            e.kind.value,
            e.name,
            styled(e.status.value),
            str(e.attempts) if e.attempts else "",
            duration(e.started_at, e.ended_at),
            short(e.input, 24),
            result,
        )
    return table


def attempts_table(entries: list[JournalEntry]) -> Table | None:
    """Every attempt of the steps that were retried: when, how long, the wait before, why."""
    table = Table(title="attempts of retried steps")
    for column in ("#", "step", "attempt", "started", "took", "waited before", "error"):
        table.add_column(column, no_wrap=True, overflow="ellipsis")
    rows = 0
    for e in entries:
        previous_end: float | None = None
        for a in e.attempt_list():
            error = a.get("error") or {}
            started, ended = a.get("started_at"), a.get("ended_at")
            waited = duration(previous_end, started) if previous_end and started else ""
            table.add_row(
                e.seq,
                e.name,
                str(a.get("attempt")),
                stamp(started),
                duration(started, ended),
                waited,
                short(f"{error.get('type', '')}: {error.get('message', '')}", 48) if error else "",
            )
            previous_end = ended
            rows += 1
    return table if rows else None
