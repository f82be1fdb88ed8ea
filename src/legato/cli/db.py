"""``legato db upgrade`` and ``legato health``: the database's schema and reachability."""

from __future__ import annotations

import json
from typing import Any

import typer

from ..client import AsyncClient
from ..errors import Unavailable
from .common import (
    existing_db,
    fail,
    handles_errors,
    out,
    run_async,
    seconds,
    settings,
    shown_db,
    warn_if_new,
)

db_app = typer.Typer(help="Manage the database schema.", no_args_is_help=True)


@db_app.command("upgrade")
@handles_errors
def db_upgrade() -> None:
    """Create or upgrade Legato's tables (safe to run on several hosts at once)."""
    warn_if_new()

    async def go() -> list[int]:
        client = AsyncClient(settings.db)  # not opened: opening needs a current schema
        try:
            return await client.upgrade_schema()
        finally:
            await client.close()

    applied = run_async(go())
    if applied:
        out.print(f"applied migration(s) {', '.join(map(str, applied))} to {shown_db()}")
    else:
        out.print(f"{shown_db()} is up to date")


@handles_errors
def health_command(
    require_worker: bool = typer.Option(
        False, "--require-worker", help="Also require a live worker on this host."
    ),
    max_age: float = typer.Option(
        45.0,
        "--max-age",
        metavar="SECONDS",
        callback=seconds,
        help="Seconds since a worker's last heartbeat to count as live.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Exit 0 if the database is reachable, accepts a write and its schema is current.

    The write (a row inserted and deleted in one transaction) fails on a full disk or a
    read-only database, which a read alone would not notice."""
    import socket
    import time

    async def go() -> Any:
        async with AsyncClient(existing_db()) as client:
            try:
                await client.check_writable()
            except Unavailable as exc:
                return exc
            return await client.list_workers()

    workers = run_async(go())
    if isinstance(workers, Unavailable):  # full disk, read-only file or server
        fail(f"the database does not accept writes: {workers}")
    host = socket.gethostname()
    live = [w for w in workers if w.host == host and time.time() - w.heartbeat_at <= max_age]
    if require_worker and not live:
        fail(f"no worker on host {host} has sent a heartbeat in the last {max_age:g} s")
    if as_json:
        print(json.dumps({"ok": True, "host": host, "live_workers": len(live)}))
        return
    out.print(f"ok: database reachable, schema current, {len(live)} live worker(s) on {host}")
