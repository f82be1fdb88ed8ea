"""``legato run``, ``legato start`` and ``legato worker``: start runs and execute them."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from enum import StrEnum

import typer
from rich.text import Text

from .. import logs
from ..apps import DEFAULT_APP
from ..client import AsyncClient
from ..records import RunStatus
from ..worker import Worker
from .common import (
    at_least,
    console,
    err,
    handles_errors,
    names_not_empty,
    not_empty,
    out,
    parse_json,
    run_async,
    seconds,
    seconds_or_zero,
    settings,
    shown_db,
    warn_if_new,
)
from .loader import load_registries, load_workflow
from .progress import follow, watching_servers
from .render import run_dict, show_json, styled

log = logging.getLogger(__name__)


class LogLevel(StrEnum):
    """``legato worker --log-level`` (see legato.logs.LEVELS)."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(StrEnum):
    """``legato worker --log-format`` (see legato.logs.FORMATS)."""

    text = "text"
    json = "json"


@handles_errors
def run_command(
    target: str = typer.Argument(..., help="FILE.py:WORKFLOW or MODULE:WORKFLOW"),
    input: str | None = typer.Option(
        None, "--input", "-i", metavar="JSON", help="JSON input, or @file.json"
    ),
    run_id: str | None = typer.Option(
        None, "--id", metavar="ID", callback=not_empty, help="Run id (idempotent)."
    ),
    concurrency: int = typer.Option(
        100, "--concurrency", metavar="N", callback=at_least(1), help="Runs in memory at once."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
    extra_queues: list[str] | None = typer.Option(
        None,
        "--queue",
        "-q",
        help="Also serve this queue (repeat for several; the queues of the workflows and "
        "routed steps FILE.py defines are served anyway).",
    ),
    attach: bool = typer.Option(
        False, "--attach", help="Follow the run --id names even if its input differs."
    ),
) -> None:
    """Start a run and execute it with an embedded worker until it ends; print the result."""
    wf = load_workflow(target)
    value = parse_json(input, "--input")
    # The queues its workflow and what its module defines use: a workflow or routed step
    # on "payments" would otherwise wait for ever for a worker of that queue.
    queues = sorted({wf.queue, *DEFAULT_APP.queues(wf.fn.__module__), *(extra_queues or [])})
    app_hint = target.rpartition(":")[0]
    warn_if_new()

    async def go() -> int:
        async with AsyncClient(settings.db) as client:
            worker = Worker(client, workflows=[wf], concurrency=concurrency, queues=queues)
            serving = asyncio.create_task(worker.run())
            try:
                handle = await client.start(wf, input_json=value, run_id=run_id, attach=attach)
                if not as_json:
                    verb = "started" if handle.created else "resumed"
                    out.print(
                        Text.assemble("run ", (handle.run_id, "bold"), f" of {wf.name} {verb}")
                    )
                async with watching_servers(client, handle.run_id, err, app_hint):
                    record = await follow(client, handle.run_id, console(quiet=as_json))
            finally:
                worker.stop()
                await serving
        if as_json:
            print(json.dumps(run_dict(record)))
        elif record.status is RunStatus.COMPLETED:
            out.print(Text.assemble(f"run {record.run_id} ", styled("completed"), "; result:"))
            show_json(out, record.output or "null")
        else:
            error = record.error_dict() or {}
            out.print(Text.assemble(f"run {record.run_id} ", styled(record.status.value)))
            err.print(
                Text.assemble((error.get("type", ""), "red"), f": {error.get('message', '')}")
            )
            err.print(f"details: legato runs show {record.run_id}")
        return 0 if record.status is RunStatus.COMPLETED else 1

    code = run_async(go())
    if code:
        raise typer.Exit(code)


@handles_errors
def start_command(
    target: str = typer.Argument(..., help="FILE.py:WORKFLOW or MODULE:WORKFLOW"),
    input: str | None = typer.Option(
        None, "--input", "-i", metavar="JSON", help="JSON input, or @file.json"
    ),
    run_id: str | None = typer.Option(
        None, "--id", metavar="ID", callback=not_empty, help="Run id (idempotent)."
    ),
    queue: str | None = typer.Option(
        None,
        "--queue",
        metavar="QUEUE",
        callback=not_empty,
        help="Queue (default: the workflow's).",
    ),
    priority: int = typer.Option(0, "--priority", metavar="N", help="Higher starts first."),
    key: str | None = typer.Option(
        None, "--key", metavar="KEY", callback=not_empty, help="Concurrency key (per-key limits)."
    ),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        metavar="SECONDS",
        callback=seconds,
        help="Seconds the whole run may take (default: the workflow's).",
    ),
    attach: bool = typer.Option(
        False, "--attach", help="Use the run --id names even if its input differs."
    ),
) -> None:
    """Start a run (a worker executes it) and print its id."""
    wf = load_workflow(target)
    value = parse_json(input, "--input")
    warn_if_new()

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
                attach=attach,
            )
            return handle.run_id

    print(run_async(go()))


@handles_errors
def worker_command(
    app_paths: list[str] | None = typer.Option(
        None,
        "--app",
        metavar="APP",
        callback=names_not_empty,
        help="FILE.py or MODULE defining workflows, blueprint functions and task kinds "
        "(without it the worker runs blueprints only); FILE.py:APP or MODULE:APP to serve "
        "the legato.App named APP there instead of the default app. Repeat to serve "
        "several (their registrations together).",
    ),
    concurrency: int = typer.Option(
        100, "--concurrency", metavar="N", callback=at_least(1), help="Runs in memory at once."
    ),
    lease: float = typer.Option(
        15.0, "--lease", metavar="SECONDS", callback=seconds, help="Lease length in seconds."
    ),
    queue_names: list[str] | None = typer.Option(
        None,
        "--queue",
        "-q",
        metavar="QUEUE",
        callback=names_not_empty,
        help="Queue to serve (repeat for several; default: default).",
    ),
    max_recoveries: int = typer.Option(
        10,
        "--max-recoveries",
        metavar="N",
        callback=at_least(0),
        help="Park a run (instead of running it) once it has been taken over from a dead "
        "worker more than this many times.",
    ),
    evict_after: float = typer.Option(
        0.0,
        "--evict-after",
        metavar="SECONDS",
        callback=seconds_or_zero,
        help="Seconds an idle run that waits durably stays in memory before it is evicted "
        "(0: at once). While in memory, its timers, signals and child results reach it.",
    ),
    log_level: LogLevel = typer.Option(
        LogLevel.info,
        "--log-level",
        case_sensitive=False,
        help="Show Legato's log records at this level and above (other libraries' "
        "loggers are left as they are).",
    ),
    log_format: LogFormat = typer.Option(
        LogFormat.text,
        "--log-format",
        case_sensitive=False,
        help="text: one line per record; json: one JSON object per line (time, level, "
        "logger, message, and run_id, workflow, worker for records about a run).",
    ),
) -> None:
    """Serve runs until SIGTERM or Ctrl-C (in-flight steps finish; runs are released)."""
    logs.configure(log_level.value, log_format.value)
    registry = load_registries(app_paths) if app_paths else DEFAULT_APP
    queues = queue_names or ["default"]
    warn_if_new()

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
        banner = (
            f"worker {worker.worker_id} serving app {registry.name} on {shown_db()} "
            f"(host {worker.host}, pid {worker.pid}, concurrency {concurrency}, "
            f"queues {', '.join(queues)})"
        )
        if log_format is LogFormat.json:  # stderr stays one JSON object per line
            log.info("%s", banner, extra={"worker": worker.worker_id})
        else:
            err.print(banner)
        await worker.run()

    run_async(go())
