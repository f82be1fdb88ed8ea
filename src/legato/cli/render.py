"""Tables, lines and JSON for runs and journals.

On a terminal a table is a Rich table; anywhere else (a pipe, a file) it is plain columns
with no box drawing, no colour and no cut cell, so ``grep`` and ``awk`` see every value.
Every cell is :class:`rich.text.Text`, never markup, so data shows as it is.
Times are ISO 8601 with their offset (UTC).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..records import JournalEntry, RunRecord
from .common import visible

_STATUS_STYLE = {
    "completed": "green",
    "failed": "red",
    "parked": "magenta",
    "cancelled": "yellow",
    "running": "cyan",
    "waiting": "blue",
    "pending": "white",
    "timed_out": "yellow",
    "alive": "green",
    "dead": "red",
}

Cell = str | Text


def stamp(value: float | None) -> str:
    """A time as ISO 8601 with its offset: ``2026-11-20T08:00:00+00:00``."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value, tz=UTC).isoformat(timespec="seconds")


def duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    ms = (end - start) * 1000
    return f"{ms:.0f} ms" if ms < 10_000 else f"{ms / 1000:.1f} s"


def short(text: str | None, width: int = 32) -> str:
    if text is None:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


def styled(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, "white"))


@dataclass
class Grid:
    """A table to print: a title, column names and rows of cells."""

    title: str
    columns: Sequence[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def add(self, *cells: Cell) -> None:
        self.rows.append(list(cells))


def show(console: Console, grid: Grid) -> None:
    """Print ``grid``: a Rich table on a terminal, plain columns elsewhere."""
    if console.is_terminal:
        table = Table(title=grid.title)
        for column in grid.columns:
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        for row in grid.rows:
            table.add_row(*(cell if isinstance(cell, Text) else Text(cell) for cell in row))
        console.print(table)
        return
    for line in plain_columns(grid):
        console.file.write(line + "\n")
    console.file.flush()


_SPACES = re.compile(r"\s")


def plain_columns(grid: Grid) -> list[str]:
    """The grid as lines of columns two spaces apart (the last one not padded); inside a
    cell, newlines and tabs become spaces, so one row stays one line."""
    rows = [list(grid.columns)] + [
        [visible(_SPACES.sub(" ", cell.plain if isinstance(cell, Text) else cell)) for cell in row]
        for row in grid.rows
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(grid.columns))]
    lines = []
    for row in rows:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*padded, row[-1]]).rstrip())
    return lines


def show_json(console: Console, text: str) -> None:
    """A JSON value (stored JSON text): coloured on a terminal, plain elsewhere."""
    if console.is_terminal:
        console.print_json(text)
    else:
        console.file.write(json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n")
        console.file.flush()


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


def runs_table(runs: list[RunRecord], title: str) -> Grid:
    grid = Grid(title, ("run id", "workflow", "status", "created", "duration"))
    for run in runs:
        grid.add(
            run.run_id,
            run.workflow,
            styled(run.status.value),
            stamp(run.created_at),
            duration(run.created_at, run.ended_at),
        )
    return grid


def journal_table(entries: list[JournalEntry]) -> Grid:
    grid = Grid("journal", ("#", "kind", "name", "status", "tries", "time", "input", "result"))
    for e in entries:
        error = e.error_dict()
        result: Cell = (
            Text(short(str(error.get("message"))), style="red") if error else short(e.output)
        )
        if e.child_run_id:
            result = Text.assemble(f"run {e.child_run_id} ", result)
        if e.progress and e.status.value == "running":
            result = f"progress {short(e.progress)}"
        grid.add(
            e.seq,
            e.kind.value,
            e.name,
            styled(e.status.value),
            str(e.attempts) if e.attempts else "",
            duration(e.started_at, e.ended_at),
            short(e.input, 24),
            result,
        )
    return grid


def attempts_table(entries: list[JournalEntry]) -> Grid | None:
    """Every attempt of the steps that were retried: when, how long, the wait before, why."""
    grid = Grid(
        "attempts of retried steps",
        ("#", "step", "attempt", "started", "took", "waited before", "error"),
    )
    for e in entries:
        previous_end: float | None = None
        for a in e.attempt_list():
            error = a.get("error") or {}
            started, ended = a.get("started_at"), a.get("ended_at")
            waited = duration(previous_end, started) if previous_end and started else ""
            grid.add(
                e.seq,
                e.name,
                str(a.get("attempt")),
                stamp(started),
                duration(started, ended),
                waited,
                short(f"{error.get('type', '')}: {error.get('message', '')}", 48) if error else "",
            )
            previous_end = ended
    return grid if grid.rows else None


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<fn>\S+)')


def raised_at(traceback_text: str | None) -> str | None:
    """``file:line in function`` of the frame that raised, from a formatted traceback (the
    last frame of the last exception in it), or None."""
    if not traceback_text:
        return None
    frames = list(_FRAME.finditer(traceback_text))
    if not frames:
        return None
    last = frames[-1]
    return f"{last['file']}:{last['line']} in {last['fn']}"
