"""The ``legato`` command: run, start, signal, cancel and inspect workflows; serve a worker.

Every command goes through :class:`legato.AsyncClient` (or runs a :class:`legato.Worker`),
so the CLI does nothing the Python API cannot. Errors print one line and exit non-zero;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress

from ..apps import DEFAULT_APP
from ..client import AsyncClient
from ..errors import InvalidInput, LegatoError
from ..records import Pause, RunRecord, RunStatus, WorkerRecord
from ..store import DEFAULT_URL
from ..worker import Worker
from ..worker.worker import DEAD_AFTER_SECONDS
from .history import export_history, replay_files
from .loader import load_registry, load_workflow
from .progress import follow
from .render import (
    attempts_table,
    entry_dict,
    journal_table,
    make_console,
    run_dict,
    runs_table,
    stamp,
    styled,
)

T = TypeVar("T")

app = typer.Typer(
    name="legato",
    help="Durable workflows on SQLite: run, start, signal, cancel, inspect, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect runs.", no_args_is_help=True)
workers_app = typer.Typer(help="Inspect workers.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)
queues_app = typer.Typer(help="Queue limits shared by all workers.", no_args_is_help=True)
app.add_typer(queues_app, name="queues")
app.add_typer(runs_app, name="runs")
app.add_typer(workers_app, name="workers")
app.add_typer(db_app, name="db")
history_app = typer.Typer(help="Export run histories for replay checks.", no_args_is_help=True)
app.add_typer(history_app, name="history")

out = make_console()
err = make_console(stderr=True)


@dataclass
class Settings:
    db: str = DEFAULT_URL
    debug: bool = False


settings = Settings()


def _fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def handles_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn Legato and input errors into one clear line (a traceback only with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (LegatoError, TimeoutError) as exc:
            if settings.debug:
                raise
            _fail(str(exc))
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        raise AssertionError("unreachable")

    return wrapper


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def parse_json(text: str | None, option: str) -> Any:
    """JSON from an option value; ``@path`` reads it from a file."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise InvalidInput(f"{option}: no such file {path}")
        source = f"{option} file {path}"
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc


@app.callback()
def _options(
    db: str = typer.Option(
        DEFAULT_URL, "--db", envvar="LEGATO_DB", help="Database URL (sqlite:///file.db)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    settings.db = db
    settings.debug = debug


@app.command("run")
@handles_errors
def run_command(
    target: str = typer.Argument(..., help="FILE.py:WORKFLOW or MODULE:WORKFLOW"),
    input: str | None = typer.Option(None, "--input", "-i", help="JSON input, or @file.json"),
    run_id: str | None = typer.Option(None, "--id", help="Run id (idempotent)."),
    concurrency: int = typer.Option(100, "--concurrency", help="Runs in memory at once."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Start a run and execute it with an embedded worker until it ends; print the result."""
    wf = load_workflow(target)
    value = parse_json(input, "--input")

    async def go() -> int:
        async with AsyncClient(settings.db) as client:
            worker = Worker(client, workflows=[wf], concurrency=concurrency)
            serving = asyncio.create_task(worker.run())
            try:
                handle = await client.start(wf, input_json=value, run_id=run_id)
                if not as_json:
                    verb = "started" if handle.created else "resumed"
                    out.print(f"run [bold]{handle.run_id}[/bold] of {wf.name} {verb}")
                record = await follow(client, handle.run_id, Console(quiet=as_json))
            finally:
                worker.stop()
                await serving
        if as_json:
            print(json.dumps(run_dict(record)))
        elif record.status is RunStatus.COMPLETED:
            out.print(f"run {record.run_id} {styled('completed')}; result:")
            out.print_json(record.output or "null")
        else:
            error = record.error_dict() or {}
            out.print(f"run {record.run_id} {styled(record.status.value)}")
            err.print(f"[red]{error.get('type', '')}[/red]: {error.get('message', '')}")
        return 0 if record.status is RunStatus.COMPLETED else 1

    code = _run(go())
    if code:
        raise typer.Exit(code)


@app.command("start")
@handles_errors
def start_command(
    target: str = typer.Argument(..., help="FILE.py:WORKFLOW or MODULE:WORKFLOW"),
    input: str | None = typer.Option(None, "--input", "-i", help="JSON input, or @file.json"),
    run_id: str | None = typer.Option(None, "--id", help="Run id (idempotent)."),
    queue: str | None = typer.Option(None, "--queue", help="Queue (default: the workflow's)."),
    priority: int = typer.Option(0, "--priority", help="Higher starts first."),
    key: str | None = typer.Option(None, "--key", help="Concurrency key (per-key limits)."),
    timeout: float | None = typer.Option(
        None, "--timeout", help="Seconds the whole run may take (default: the workflow's)."
    ),
) -> None:
    """Start a run (a worker executes it) and print its id."""
    wf = load_workflow(target)
    value = parse_json(input, "--input")

    async def go() -> str:
        async with AsyncClient(settings.db) as client:
            handle = await client.start(
                wf,
                input_json=value,
                run_id=run_id,
                queue=queue,
                priority=priority,
                concurrency_key=key,
                timeout=timeout,
            )
            return handle.run_id

    print(_run(go()))


@app.command("worker")
@handles_errors
def worker_command(
    app_path: str | None = typer.Option(
        None,
        "--app",
        help="FILE.py or MODULE defining workflows, blueprint functions and task kinds "
        "(without it the worker runs blueprints only); FILE.py:APP or MODULE:APP to serve "
        "the legato.App named APP there instead of the default app.",
    ),
    concurrency: int = typer.Option(100, "--concurrency", help="Runs in memory at once."),
    lease: float = typer.Option(15.0, "--lease", help="Lease length in seconds."),
    queue_names: list[str] | None = typer.Option(
        None, "--queue", "-q", help="Queue to serve (repeat for several; default: default)."
    ),
    max_recoveries: int = typer.Option(
        10,
        "--max-recoveries",
        min=0,
        help="Park a run (instead of running it) once it has been taken over from a dead "
        "worker more than this many times.",
    ),
    evict_after: float = typer.Option(
        0.0,
        "--evict-after",
        min=0.0,
        help="Seconds an idle run that waits durably stays in memory before it is evicted "
        "(0: at once). While in memory, its timers, signals and child results reach it.",
    ),
) -> None:
    """Serve runs until SIGTERM or Ctrl-C (in-flight steps finish; runs are released)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    registry = load_registry(app_path) if app_path is not None else DEFAULT_APP
    queues = queue_names or ["default"]

    async def go() -> None:
        worker = Worker(
            settings.db,
            app=registry,
            concurrency=concurrency,
            lease_seconds=lease,
            queues=queues,
            max_recoveries=max_recoveries,
            evict_after=evict_after,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        err.print(
            f"worker {worker.worker_id} serving app {registry.name} on {settings.db} "
            f"(host {worker.host}, pid {worker.pid}, concurrency {concurrency}, "
            f"queues {', '.join(queues)})"
        )
        await worker.run()

    _run(go())


@app.command("signal")
@handles_errors
def signal_command(
    run_id: str = typer.Argument(..., help="Run id."),
    name: str = typer.Argument(..., help="Signal name."),
    data: str | None = typer.Option(None, "--data", "-d", help="JSON data, or @file.json"),
) -> None:
    """Send a signal to a run (buffered until the run waits for it)."""
    value = parse_json(data, "--data")

    async def go() -> None:
        async with AsyncClient(settings.db) as client:
            await client.signal(run_id, name, value)

    _run(go())
    out.print(f"signal {name!r} sent to run {run_id}")


@app.command("cancel")
@handles_errors
def cancel_command(run_id: str = typer.Argument(..., help="Run id.")) -> None:
    """Ask a run to cancel; it sees the cancellation at its next step or wait."""

    async def go() -> RunStatus:
        async with AsyncClient(settings.db) as client:
            return (await client.cancel(run_id)).status

    status = _run(go())
    if status.is_terminal:
        out.print(f"run {run_id} had already ended ({status.value})")
    else:
        out.print(f"cancellation of run {run_id} requested")


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

    runs = _run(go())
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

    record, journal = _run(go())
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


@workers_app.command("list")
@handles_errors
def workers_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
    dead_after: float = typer.Option(
        DEAD_AFTER_SECONDS,
        "--dead-after",
        min=0.0,
        help="Seconds since a worker's last heartbeat after which it is shown dead.",
    ),
) -> None:
    """Workers that have a heartbeat in the database: alive or dead, what each can run
    (app, queues, workflows, capabilities) and how many runs each holds."""

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await client.list_workers()

    workers = _run(go())
    now = time.time()
    if as_json:
        for w in workers:
            print(json.dumps({**_worker_dict(w), "alive": w.alive(now, dead_after)}))
        return
    from rich.table import Table

    table = Table(title=f"{len(workers)} worker(s)")
    columns = ("worker", "state", "app", "host", "pid", "heartbeat", "runs", "queues")
    for column in (*columns, "workflows", "capabilities"):
        table.add_column(column)
    for w in workers:
        state = "[green]alive[/green]" if w.alive(now, dead_after) else "[red]dead[/red]"
        table.add_row(
            w.worker_id,
            state,
            w.app or "",
            w.host,
            str(w.pid),
            f"{stamp(w.heartbeat_at)} ({now - w.heartbeat_at:.0f} s ago)",
            str(w.runs),
            ", ".join(w.queues),
            ", ".join(w.workflows),
            ", ".join(w.capabilities),
        )
    out.print(table)


@queues_app.command("set")
@handles_errors
def queues_set(
    name: str = typer.Argument(..., help="Queue name."),
    concurrency: int | None = typer.Option(None, help="Runs executing at once, all workers."),
    key_concurrency: int | None = typer.Option(None, help="The same, per concurrency key."),
    rate: int | None = typer.Option(None, help="Runs that may start per --per seconds."),
    per: float = typer.Option(1.0, help="Rate period in seconds."),
) -> None:
    """Set (replace) a queue's limits; options left out are lifted."""

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await client.set_queue(
                name,
                concurrency=concurrency,
                key_concurrency=key_concurrency,
                rate_limit=rate,
                rate_period=per,
            )

    _run(go())
    out.print(f"queue {name!r}: {_limits_text(concurrency, key_concurrency, rate, per)}")


@queues_app.command("list")
@handles_errors
def queues_list(as_json: bool = typer.Option(False, "--json", help="Print JSON lines.")) -> None:
    """Queues with limits."""

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await client.queues()

    for q in _run(go()):
        if as_json:
            print(json.dumps(dataclasses.asdict(q)))
        else:
            limits = _limits_text(q.concurrency, q.key_concurrency, q.rate_limit, q.rate_period)
            out.print(f"{q.name}: {limits}")


def _limits_text(
    concurrency: int | None, per_key: int | None, rate: int | None, per: float | None
) -> str:
    parts = []
    if concurrency is not None:
        parts.append(f"at most {concurrency} at once")
    if per_key is not None:
        parts.append(f"at most {per_key} per key")
    if rate is not None:
        parts.append(f"at most {rate} starts per {per:g} s")
    return ", ".join(parts) or "no limits"


@db_app.command("upgrade")
@handles_errors
def db_upgrade() -> None:
    """Create or upgrade Legato's tables (safe to run on several hosts at once)."""

    async def go() -> list[int]:
        client = AsyncClient(settings.db)  # not opened: opening needs a current schema
        try:
            return await client.upgrade_schema()
        finally:
            await client.close()

    applied = _run(go())
    if applied:
        out.print(f"applied migration(s) {', '.join(map(str, applied))} to {settings.db}")
    else:
        out.print(f"{settings.db} is up to date")


@app.command("health")
@handles_errors
def health_command(
    require_worker: bool = typer.Option(
        False, "--require-worker", help="Also require a live worker on this host."
    ),
    max_age: float = typer.Option(
        45.0, "--max-age", help="Seconds since a worker's last heartbeat to count as live."
    ),
) -> None:
    """Exit 0 if the database is reachable and its schema current (for supervisors)."""
    import socket
    import time

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await client.list_workers()

    workers = _run(go())
    host = socket.gethostname()
    live = [w for w in workers if w.host == host and time.time() - w.heartbeat_at <= max_age]
    if require_worker and not live:
        _fail(f"no worker on host {host} has sent a heartbeat in the last {max_age:g} s")
    out.print(f"ok: database reachable, schema current, {len(live)} live worker(s) on {host}")


def _worker_dict(w: WorkerRecord) -> dict[str, Any]:
    return {
        "worker_id": w.worker_id,
        "host": w.host,
        "pid": w.pid,
        "started_at": w.started_at,
        "heartbeat_at": w.heartbeat_at,
        "runs": w.runs,
        "app": w.app,
        "queues": list(w.queues),
        "workflows": list(w.workflows),
        "capabilities": list(w.capabilities),
    }


def main() -> None:
    """Entry point of the ``legato`` command."""
    try:
        app()
    except LegatoError as exc:  # raised during option parsing or with --debug
        if settings.debug:
            raise
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)


# -- failure handling: redrive, pause, history ---------------------------------------------
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

        record = _run(one())
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

    count, problems = _run(bulk())
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

    record = _run(go())
    out.print(f"run {record.run_id} is pending again from position {to_step}")


def _pause_command(
    pause: bool,
    run_id: str | None,
    workflow: str | None,
    queue: str | None,
    wait: bool,
    timeout: float,
) -> None:
    what = f"run {run_id}" if run_id else f"workflow {workflow}" if workflow else f"queue {queue}"

    async def go() -> int:
        async with AsyncClient(settings.db) as client:
            if not pause:
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

    left = _run(go())
    if not pause:
        out.print(f"{what} resumed")
    elif left == -1:
        out.print(f"{what} paused (workers stop its runs after their in-flight steps)")
    elif left == 0:
        out.print(f"{what} paused: no run of it is executing")
    else:
        out.print(f"{what} paused; {left} run(s) still finishing a step after {timeout:g}s")


@app.command("pause")
@handles_errors
def pause_command(
    run_id: str | None = typer.Argument(None, help="Run id (or --workflow / --queue)."),
    workflow: str | None = typer.Option(None, "--workflow", help="Pause all its runs."),
    queue: str | None = typer.Option(None, "--queue", help="Pause the queue."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Return once none executes."),
    timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait at most."),
) -> None:
    """Pause a run, a workflow or a queue: in-flight steps finish, nothing new starts."""
    _pause_command(True, run_id, workflow, queue, wait, timeout)


@app.command("resume")
@handles_errors
def resume_command(
    run_id: str | None = typer.Argument(None, help="Run id (or --workflow / --queue)."),
    workflow: str | None = typer.Option(None, "--workflow", help="Resume all its runs."),
    queue: str | None = typer.Option(None, "--queue", help="Resume the queue."),
) -> None:
    """Resume what `legato pause` paused."""
    _pause_command(False, run_id, workflow, queue, False, 0.0)


@app.command("paused")
@handles_errors
def paused_command() -> None:
    """List paused workflows and queues."""

    async def go() -> list[Pause]:
        async with AsyncClient(settings.db) as client:
            return await client.pauses()

    pauses = _run(go())
    if not pauses:
        out.print("nothing is paused")
    for p in pauses:
        out.print(f"{p.scope.value} {p.name} paused since {stamp(p.created_at)} UTC")


@history_app.command("export")
@handles_errors
def history_export(
    run_id: str = typer.Argument(..., help="Run id."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
) -> None:
    """Write a run's history (run + journal) as JSON, for `legato replay`."""

    async def go() -> Any:
        async with AsyncClient(settings.db) as client:
            return await export_history(client, run_id)

    history = _run(go())
    if output is None:
        print(history.to_json())
    else:
        history.save(output)
        err.print(f"history of run {run_id} written to {output}")


@app.command("replay")
@handles_errors
def replay_command(
    files: list[Path] = typer.Argument(..., help="History files from `legato history export`."),
    app_path: str = typer.Option(
        ..., "--app", help="FILE.py or MODULE with the new code (FILE.py:APP for a legato.App)."
    ),
) -> None:
    """Replay recorded histories against new code; report non-determinism before deploying."""
    reports = replay_files(files, app_path)
    for report in reports:
        out.print(report.summary(), markup=False, highlight=False)
    bad = [r for r in reports if not r.ok]
    if bad:
        err.print(f"{len(bad)} of {len(reports)} histories would not replay on this code")
        raise typer.Exit(1)
    out.print(f"all {len(reports)} histories replay on this code")


# Imported last: the blueprint commands use this module's settings, consoles and helpers.
from .blueprints import blueprint_app, events_app  # noqa: E402

app.add_typer(blueprint_app, name="blueprint")
app.add_typer(events_app, name="events")
