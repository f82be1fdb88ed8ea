"""``legato runs ...``: list and show runs; retry and reset them after a fix."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

import typer
from rich.progress import Progress
from rich.text import Text

from ..client import AsyncClient, RunPage
from ..errors import LegatoError, NotFound
from ..records import JournalEntry, RunRecord, RunStatus
from .common import (
    Usage,
    at_least,
    err,
    existing_db,
    handles_errors,
    not_empty,
    out,
    run_async,
)
from .render import (
    attempts_table,
    entry_dict,
    journal_table,
    raised_at,
    run_dict,
    runs_table,
    show,
    show_json,
    stamp,
    styled,
)

runs_app = typer.Typer(help="Inspect runs.", no_args_is_help=True)


@runs_app.command("list")
@handles_errors
def runs_list(
    status: str | None = typer.Option(
        None, "--status", metavar="STATUS", help="Only runs in this status."
    ),
    workflow: str | None = typer.Option(
        None, "--workflow", metavar="NAME", callback=not_empty, help="Only runs of this workflow."
    ),
    limit: int = typer.Option(
        50, "--limit", metavar="N", callback=at_least(1), help="At most this many (newest first)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List runs, newest first; says (on stderr) when more runs match than it shows."""
    if status is not None and status not in {s.value for s in RunStatus}:
        choices = ", ".join(s.value for s in RunStatus)
        raise Usage(f"unknown status {status!r}: use one of {choices}")

    async def go() -> RunPage:
        async with AsyncClient(existing_db()) as client:
            return await client.page(status, workflow, limit=limit)

    page = run_async(go())
    runs = page.runs
    if as_json:
        for record in runs:
            print(json.dumps(run_dict(record)))
    else:
        show(out, runs_table(runs, f"{len(runs)} of {page.total} run(s)"))
    if page.total > len(runs):
        err.print(
            f"showing the newest {len(runs)} of {page.total} runs: --limit {page.total} "
            "shows them all"
        )


@runs_app.command("show")
@handles_errors
def runs_show(
    run_id: str = typer.Argument(..., help="Run id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a run and its journal: steps, attempts, timings, inputs and outputs; for a
    failed run, the error, where it was raised (file:line) and the compensations that ran."""

    async def go() -> Any:
        async with AsyncClient(existing_db()) as client:
            return await client.get(run_id), await client.journal(run_id)

    record, journal = run_async(go())
    if as_json:
        print(json.dumps({**run_dict(record), "journal": [entry_dict(e) for e in journal]}))
        return
    out.print(
        Text.assemble(
            ("run", "bold"), f" {record.run_id}   ", ("workflow", "bold"), f" {record.workflow}"
        )
    )
    out.print(
        Text.assemble("status ", styled(record.status.value), f"   version {record.version or '-'}")
    )
    out.print(f"created {stamp(record.created_at)}   ended {stamp(record.ended_at) or '-'}")
    if record.parent_run_id:
        out.print(f"child of {record.parent_run_id}")
    if record.wait_signals:
        out.print(f"waiting for signal(s): {', '.join(record.wait_signals)}")
    if record.wake_at:
        out.print(f"wakes at {stamp(record.wake_at)}")
    if record.paused:
        out.print(Text.assemble(("paused", "yellow"), " (legato resume RUN to continue)"))
    if record.redrives:
        out.print(f"retried or reset {record.redrives} time(s) by an operator")
    if record.recoveries:
        out.print(
            f"taken over {record.recoveries} time(s) from a worker that died (or lost its "
            "lease) holding it"
        )
    if record.deadline_at:
        out.print(f"times out at {stamp(record.deadline_at)}")
    if record.requires:  # why a pending run may wait: no worker's app has these
        out.print(f"requires of its worker's app: {', '.join(record.requires)}")
    show(out, journal_table(journal))
    attempts = attempts_table(journal)
    if attempts is not None:
        show(out, attempts)
    if record.output is not None:
        out.print("result:")
        show_json(out, record.output)
    error = record.error_dict()
    if error:
        _show_error(record, error, journal)
    if record.status in (RunStatus.FAILED, RunStatus.PARKED):
        out.print(Text(f"after a fix: legato runs retry {record.run_id}", style="dim"))


def _show_error(record: RunRecord, error: dict[str, Any], journal: list[JournalEntry]) -> None:
    """The error that ended the run, where it was raised, the compensations that ran, and
    the traceback of a failure."""
    out.print(Text.assemble((str(error.get("type")), "red"), f": {error.get('message')}"))
    failed = next((e for e in journal if e.seq == error.get("failed_seq")), None)
    step_error = failed.error_dict() if failed is not None else None
    origin = step_error if step_error and step_error.get("traceback") else error
    where = raised_at(origin.get("traceback"))
    if where:
        step = f" (step {error.get('failed_step')}, #{failed.seq})" if failed is not None else ""
        out.print(f"  raised at {where}{step}")
    compensations = error.get("compensations", [])
    if compensations:
        out.print(f"  compensations that ran ({len(compensations)}):")
    for undo in compensations:
        detail = f" ({undo['error']})" if undo.get("error") else ""
        out.print(
            Text.assemble(
                f"    {undo['compensation']} of step {undo['step']} (#{undo['seq']}): ",
                styled(undo["status"]),
                detail,
            )
        )
    if error.get("traceback") and record.status is RunStatus.FAILED:
        out.print(Text("traceback of the failure (--json for all details):", style="dim"))
        out.print((origin.get("traceback") or error["traceback"]).rstrip())


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
        raise Usage(
            f"--since {text!r}: give a duration ago (30m, 2h, 7d) or an ISO date/time "
            "(2026-11-20 or 2026-11-20T08:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@runs_app.command("retry")
@handles_errors
def runs_retry(
    run_id: str | None = typer.Argument(
        None, callback=not_empty, help="Run id (or select runs with the options)."
    ),
    workflow: str | None = typer.Option(
        None, "--workflow", metavar="NAME", callback=not_empty, help="Retry runs of this workflow."
    ),
    status: str = typer.Option("failed", "--status", metavar="STATUS", help="failed or parked."),
    since: str | None = typer.Option(
        None, "--since", metavar="WHEN", help="Created since: 2h, 7d, 2026-11-20."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be retried."),
) -> None:
    """Resume failed runs from the failed step, with the code deployed now.

    Completed steps are not run again: their recorded results are reused.
    """
    if run_id is None and workflow is None:
        raise Usage("give a run id, or --workflow NAME to retry runs in bulk")
    if run_id is not None and workflow is not None:
        raise Usage("give a run id or --workflow NAME, not both")
    if status not in ("failed", "parked"):
        raise Usage(f"--status {status!r}: only failed or parked runs are retried")
    if run_id is not None:

        async def one() -> RunRecord:
            async with AsyncClient(existing_db()) as client:
                return await client.retry(run_id)

        record = run_async(one())
        out.print(f"run {record.run_id} is pending again (retry {record.redrives})")
        return
    floor = parse_since(since) if since is not None else None

    async def bulk() -> tuple[int, list[str]]:
        async with AsyncClient(existing_db()) as client:
            runs = await client.list(status, workflow, limit=1_000_000)
            if not runs and (await client.page(workflow=workflow, limit=1)).total == 0:
                others = sorted({r.workflow for r in await client.list(status, limit=1_000_000)})
                known = (
                    f"workflows with {status} runs: {', '.join(others)}"
                    if others
                    else (f"no run is {status}")
                )
                raise NotFound(f"no run of workflow {workflow!r} exists; {known}")
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
        err.print(Text.assemble(("not retried", "yellow"), f" {problem}"))
    out.print(f"{count - len(problems)} of {count} run(s) retried")
    if problems:
        raise typer.Exit(1)


@runs_app.command("reset")
@handles_errors
def runs_reset(
    run_id: str = typer.Argument(..., help="Run id."),
    to_step: str = typer.Option(
        ...,
        "--to-step",
        metavar="N",
        callback=not_empty,
        help="Position (# in runs show) to re-run from.",
    ),
) -> None:
    """Run an ended run again from an earlier position; steps before it are reused."""

    async def go() -> RunRecord:
        async with AsyncClient(existing_db()) as client:
            return await client.reset(run_id, to_step)

    record = run_async(go())
    out.print(f"run {record.run_id} is pending again from position {to_step}")
