"""``legato signal``, ``cancel``, ``pause``, ``resume`` and ``paused``: act on runs that
exist (send them data, stop them, hold them)."""

from __future__ import annotations

import asyncio
import json
import time

import typer

from ..client import AsyncClient, SignalSent
from ..errors import NotFound
from ..records import Pause, RunStatus
from .common import (
    Usage,
    err,
    existing_db,
    handles_errors,
    not_empty,
    out,
    parse_json,
    run_async,
    seconds_or_zero,
)
from .render import stamp


@handles_errors
def signal_command(
    run_id: str = typer.Argument(..., help="Run id."),
    name: str = typer.Argument(..., callback=not_empty, help="Signal name."),
    data: str | None = typer.Option(
        None, "--data", "-d", metavar="JSON", help="JSON data, or @file.json"
    ),
) -> None:
    """Send a signal to a run (buffered until the run waits for it).

    Refused (exit 1) when the run's workflow declares its signals and not this one, or
    when the data does not fit the type the run waits for; a name the run does not wait
    for now is kept, with a warning naming what it waits for."""
    value = parse_json(data, "--data")

    async def go() -> SignalSent:
        async with AsyncClient(existing_db()) as client:
            return await client.signal(run_id, name, value)

    sent = run_async(go())
    out.print(
        f"signal {name!r} sent to run {run_id}", markup=False, highlight=False, soft_wrap=True
    )
    if sent.note is not None:
        err.print(f"warning: {sent.note}", markup=False, highlight=False, soft_wrap=True)


@handles_errors
def cancel_command(run_id: str = typer.Argument(..., help="Run id.")) -> None:
    """Ask a run to cancel; it sees the cancellation at its next step or wait."""

    async def go() -> RunStatus:
        async with AsyncClient(existing_db()) as client:
            return (await client.cancel(run_id)).status

    status = run_async(go())
    if status.is_terminal:
        out.print(f"run {run_id} had already ended ({status.value})")
    else:
        out.print(f"cancellation of run {run_id} requested")


def _pause_command(
    pause: bool,
    run_id: str | None,
    workflow: str | None,
    queue: str | None,
    wait: bool,
    timeout: float,
) -> None:
    given = [run_id is not None, workflow is not None, queue is not None]
    if sum(given) != 1:
        raise Usage("pause or resume one thing: give RUN, --workflow NAME or --queue NAME")
    what = f"run {run_id}" if run_id else f"workflow {workflow}" if workflow else f"queue {queue}"

    async def go() -> int:
        async with AsyncClient(existing_db()) as client:
            if not pause:
                if run_id is None:
                    await _check_paused(client, workflow, queue)
                await client.resume(run_id, workflow=workflow, queue=queue)
                return 0
            await client.pause(run_id, workflow=workflow, queue=queue)
            if not wait:
                return -1
            deadline = time.monotonic() + timeout
            with err.status(f"waiting for runs of {what} to finish their in-flight steps"):
                while True:
                    left = await client.still_running(run_id, workflow=workflow, queue=queue)
                    if left == 0 or time.monotonic() > deadline:
                        return left
                    await asyncio.sleep(0.2)

    left = run_async(go())
    if not pause:
        out.print(f"{what} resumed")
    elif left == -1:
        out.print(f"{what} paused (workers stop its runs after their in-flight steps)")
    elif left == 0:
        out.print(f"{what} paused: no run of it is executing")
    else:
        out.print(f"{what} paused; {left} run(s) still finishing a step after {timeout:g}s")


@handles_errors
def pause_command(
    run_id: str | None = typer.Argument(
        None, callback=not_empty, help="Run id (or --workflow / --queue)."
    ),
    workflow: str | None = typer.Option(
        None, "--workflow", metavar="NAME", callback=not_empty, help="Pause all its runs."
    ),
    queue: str | None = typer.Option(
        None, "--queue", metavar="NAME", callback=not_empty, help="Pause the queue."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Return once none executes."),
    timeout: float = typer.Option(
        60.0,
        "--timeout",
        metavar="SECONDS",
        callback=seconds_or_zero,
        help="Seconds to wait at most.",
    ),
) -> None:
    """Pause a run, a workflow or a queue: in-flight steps finish, nothing new starts."""
    _pause_command(True, run_id, workflow, queue, wait, timeout)


@handles_errors
def resume_command(
    run_id: str | None = typer.Argument(
        None, callback=not_empty, help="Run id (or --workflow / --queue)."
    ),
    workflow: str | None = typer.Option(
        None, "--workflow", metavar="NAME", callback=not_empty, help="Resume all its runs."
    ),
    queue: str | None = typer.Option(
        None, "--queue", metavar="NAME", callback=not_empty, help="Resume the queue."
    ),
) -> None:
    """Resume what `legato pause` paused."""
    _pause_command(False, run_id, workflow, queue, False, 0.0)


async def _check_paused(client: AsyncClient, workflow: str | None, queue: str | None) -> None:
    """Refuse to resume a workflow or queue that is not paused (a typo would otherwise
    report "resumed" and change nothing), naming what is paused."""
    pauses = await client.pauses()
    scope, name = ("workflow", workflow) if workflow is not None else ("queue", queue)
    if any(p.scope.value == scope and p.name == name for p in pauses):
        return
    paused = ", ".join(f"{p.scope.value} {p.name}" for p in pauses) or "nothing"
    raise NotFound(f"{scope} {name!r} is not paused; paused now: {paused}")


@handles_errors
def paused_command(
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List paused workflows and queues."""

    async def go() -> list[Pause]:
        async with AsyncClient(existing_db()) as client:
            return await client.pauses()

    pauses = run_async(go())
    if as_json:
        for p in pauses:
            print(json.dumps({"scope": p.scope.value, "name": p.name, "since": p.created_at}))
        return
    if not pauses:
        out.print("nothing is paused")
    for p in pauses:
        out.print(f"{p.scope.value} {p.name} paused since {stamp(p.created_at)}")
