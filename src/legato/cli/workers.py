"""``legato workers list``: the workers with a heartbeat in the database."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from ..client import AsyncClient
from ..records import WorkerRecord
from ..worker.worker import DEAD_AFTER_SECONDS
from .common import handles_errors, out, run_async, settings
from .render import stamp

workers_app = typer.Typer(help="Inspect workers.", no_args_is_help=True)


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

    workers = run_async(go())
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
