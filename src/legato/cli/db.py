"""``legato db upgrade`` and ``legato health``: the database's schema and reachability."""

from __future__ import annotations

from typing import Any

import typer

from ..client import AsyncClient
from .common import fail, handles_errors, out, run_async, settings

db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


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

    applied = run_async(go())
    if applied:
        out.print(f"applied migration(s) {', '.join(map(str, applied))} to {settings.db}")
    else:
        out.print(f"{settings.db} is up to date")


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

    workers = run_async(go())
    host = socket.gethostname()
    live = [w for w in workers if w.host == host and time.time() - w.heartbeat_at <= max_age]
    if require_worker and not live:
        fail(f"no worker on host {host} has sent a heartbeat in the last {max_age:g} s")
    out.print(f"ok: database reachable, schema current, {len(live)} live worker(s) on {host}")
