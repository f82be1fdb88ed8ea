"""``legato runs ...``: list and show runs; retry and reset them after a fix."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import typer
from rich.progress import Progress

from ..client import AsyncClient
from ..errors import InvalidInput, LegatoError
from ..records import RunRecord, RunStatus
from .common import err, handles_errors, out, run_async, settings
from .render import attempts_table, entry_dict, journal_table, run_dict, runs_table, stamp, styled

runs_app = typer.Typer(help="Inspect runs.", no_args_is_help=True)


@runs_app.command("list")
@handles_errors
def runs_list(
    status: str | None = typer.Option(None, "--status", help="Only runs in this status."),
    workflow: str | None = typer.Option(None, "--workflow", help="Only runs of this workflow."),
    limit: int = typer.Option(50, "--limit", help="At most this many (newest first)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List runs, newest first."""
    if status is not None and status not in {s.value for s in RunStatus}:
        choices = ", ".join(s.value for s in RunStatus)
        raise InvalidInput(f"unknown status {status!r}: use one of {choices}")

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await client.list(status, workflow, limit)

    runs = run_async(go())
    if as_json:
        for record in runs:
            print(json.dumps(run_dict(record)))
    else:
        out.print(runs_table(runs))


@runs_app.command("show")
@handles_errors
def runs_show(
    run_id: str = typer.Argument(..., help="Run id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a run and its journal: steps, attempts, timings, inputs and outputs."""

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await client.get(run_id), await client.journal(run_id)

    record, journal = run_async(go())
    if as_json:
        print(json.dumps({**run_dict(record), "journal": [entry_dict(e) for e in journal]}))
        return
    out.print(f"[bold]run[/bold] {record.run_id}   [bold]workflow[/bold] {record.workflow}")
    out.print(f"status {styled(record.status.value)}   version {record.version or '-'}")
    out.print(f"created {stamp(record.created_at)}   ended {stamp(record.ended_at) or '-'}")
    if record.parent_run_id:
        out.print(f"child of {record.parent_run_id}")
    if record.wait_signals:
        out.print(f"waiting for signal(s): {', '.join(record.wait_signals)}")
    if record.wake_at:
        out.print(f"wakes at {stamp(record.wake_at)} UTC")
    if record.paused:
        out.print("[yellow]paused[/yellow] (legato resume RUN to continue)")
    if record.redrives:
        out.print(f"retried or reset {record.redrives} time(s) by an operator")
    if record.recoveries:
        out.print(
            f"taken over {record.recoveries} time(s) from a worker that died (or lost its "
            "lease) holding it"
        )
    if record.deadline_at:
        out.print(f"times out at {stamp(record.deadline_at)} UTC")
    if record.requires:  # why a pending run may wait: no worker's app has these
        out.print(f"requires of its worker's app: {', '.join(record.requires)}")
    out.print(journal_table(journal))
    attempts = attempts_table(journal)
    if attempts is not None:
        out.print(attempts)
    if record.output is not None:
        out.print("result:")
        out.print_json(record.output)
    error = record.error_dict()
    if error:
        out.print(f"[red]{error.get('type')}[/red]: {error.get('message')}")
        for undo in error.get("compensations", []):
            detail = f" ({undo['error']})" if undo.get("error") else ""
            out.print(
                f"  compensation {undo['compensation']} of step {undo['step']} "
                f"(#{undo['seq']}): {styled(undo['status'])}{detail}"
            )
        if error.get("traceback") and record.status is RunStatus.FAILED:
            out.print("[dim]traceback of the failure (--json for all details):[/dim]")
            out.print(error["traceback"].rstrip(), markup=False, highlight=False)
    if record.status in (RunStatus.FAILED, RunStatus.PARKED):
        out.print(f"[dim]after a fix: legato runs retry {record.run_id}[/dim]")


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> float:
    """``2h``/``30m``/``7d`` ago, or an ISO date/time (UTC unless it says otherwise)."""
    relative = _RELATIVE.match(text.strip())
    if relative:
        return time.time() - float(relative.group(1)) * _UNIT_SECONDS[relative.group(2)]
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"--since {text!r}: give a duration ago (30m, 2h, 7d) or an ISO date/time "
            "(2026-11-20 or 2026-11-20T08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@runs_app.command("retry")
@handles_errors
def runs_retry(
    run_id: str | None = typer.Argument(None, help="Run id (or select runs with the options)."),
    workflow: str | None = typer.Option(None, "--workflow", help="Retry runs of this workflow."),
    status: str = typer.Option("failed", "--status", help="failed or parked."),
    since: str | None = typer.Option(None, "--since", help="Created since: 2h, 7d, 2026-11-20."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be retried."),
) -> None:
    """Resume failed runs from the failed step, with the code deployed now.

    Completed steps are not run again: their recorded results are reused.
    """
    if run_id is None and workflow is None:
        raise InvalidInput("give a run id, or --workflow NAME to retry runs in bulk")
    if status not in ("failed", "parked"):
        raise InvalidInput(f"--status {status!r}: only failed or parked runs are retried")
    if run_id is not None:

        async def one() -> RunRecord:
            async with AsyncClient(settings.db) as client:
                return await client.retry(run_id)

        record = run_async(one())
        out.print(f"run {record.run_id} is pending again (retry {record.redrives})")
        return
    floor = parse_since(since) if since is not None else None

    async def bulk() -> tuple[int, list[str]]:
        async with AsyncClient(settings.db) as client:
            runs = await client.list(status, workflow, limit=1_000_000)
            chosen = [r for r in runs if floor is None or r.created_at >= floor]
            if dry_run:
                for r in chosen:
                    out.print(
                        f"would retry {r.run_id} ({r.workflow}, created {stamp(r.created_at)})"
                    )
                return len(chosen), []
            problems: list[str] = []
            with Progress(console=err, transient=False) as progress:
                task = progress.add_task(f"retrying {len(chosen)} run(s)", total=len(chosen))
                for r in chosen:
                    try:
                        await client.retry(r.run_id)
                    except LegatoError as exc:
                        problems.append(f"{r.run_id}: {exc}")
                    progress.advance(task)
            return len(chosen), problems

    count, problems = run_async(bulk())
    if dry_run:
        out.print(f"{count} run(s) would be retried")
        return
    for problem in problems:
        err.print(f"[yellow]not retried[/yellow] {problem}", highlight=False)
    out.print(f"{count - len(problems)} of {count} run(s) retried")
    if problems:
        raise typer.Exit(1)


@runs_app.command("reset")
@handles_errors
def runs_reset(
    run_id: str = typer.Argument(..., help="Run id."),
    to_step: str = typer.Option(..., "--to-step", help="Position (# in runs show) to re-run from."),
) -> None:
    """Run an ended run again from an earlier position; steps before it are reused."""

    async def go() -> RunRecord:
        async with AsyncClient(settings.db) as client:
            return await client.reset(run_id, to_step)

    record = run_async(go())
    out.print(f"run {record.run_id} is pending again from position {to_step}")
