"""``legato workers list``: the workers with a heartbeat in the database."""

from __future__ import annotations

import json
import time
from typing import Any

import typer

from ..client import AsyncClient
from ..records import WorkerRecord
from ..worker.worker import DEAD_AFTER_SECONDS
from .common import existing_db, handles_errors, out, run_async, seconds
from .render import Grid, show, stamp, styled

workers_app = typer.Typer(help="Inspect workers.", no_args_is_help=True)


@workers_app.command("list")
@handles_errors
def workers_list(
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
    dead_after: float = typer.Option(
        DEAD_AFTER_SECONDS,
        "--dead-after",
        metavar="SECONDS",
        callback=seconds,
        help="Seconds since a worker's last heartbeat after which it is shown dead.",
    ),
) -> None:
    """Workers that have a heartbeat in the database: alive or dead, what each can run
    (app, queues, workflows, capabilities) and how many runs each holds."""

    async def go() -> Any:
        async with AsyncClient(existing_db()) as client:
            return await client.list_workers()

    workers = run_async(go())
    now = time.time()
    if as_json:
        for w in workers:
            print(json.dumps({**_worker_dict(w), "alive": w.alive(now, dead_after)}))
        return
    columns = ("worker", "state", "app", "host", "pid", "heartbeat", "runs", "queues")
    grid = Grid(f"{len(workers)} worker(s)", (*columns, "workflows", "capabilities"))
    for w in workers:
        state = styled("alive" if w.alive(now, dead_after) else "dead")
        grid.add(
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
    show(out, grid)


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
