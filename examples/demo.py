"""The demo behind ``make demo``: one order, end to end, on an embedded SQLite file.

An embedded worker executes the run while this script plays the warehouse: when the run
is waiting for the 'shipped' signal, it sends it. Progress is printed as the journal grows.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from order_fulfilment import Order, fulfil_order
from rich.console import Console

import legato
from legato.cli.progress import follow
from legato.store import open_store

DB = "sqlite:///demo.db"


async def warehouse(client: legato.AsyncClient, run_id: str, console: Console) -> None:
    """Send 'shipped' once the run waits for it (the signal would be buffered anyway)."""
    while "shipped" not in (await client.get(run_id)).wait_signals:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    console.print("  [dim]warehouse: parcel handed to DHL, sending signal 'shipped'[/dim]")
    await client.signal(run_id, "shipped", {"carrier": "DHL", "tracking": "JD014600003"})


def make_console() -> Console:
    """The demo's own console: its messages use Rich markup; wide enough for a pipe."""
    return Console(width=None if sys.stdout.isatty() else 140)


async def main() -> int:
    console = make_console()
    order = Order(**json.loads(Path("order.json").read_text()))
    store = open_store(DB)
    await store.open()
    worker = legato.Worker(store)
    serving = asyncio.create_task(worker.run())
    client = legato.AsyncClient(store)
    started = time.perf_counter()
    handle = await client.start(fulfil_order, order, run_id=f"order-{order.id}")
    console.print(f"[bold]order {order.id}[/bold]: run {handle.run_id} started on {DB}")
    signaller = asyncio.create_task(warehouse(client, handle.run_id, console))
    record = await follow(client, handle.run_id, console)
    signaller.cancel()
    worker.stop()
    await serving
    await store.close()
    elapsed = time.perf_counter() - started
    if record.status is not legato.RunStatus.COMPLETED:
        console.print(f"[red]run ended {record.status.value}: {record.error}[/red]")
        return 1
    console.print(f"[bold green]done[/bold green] in {elapsed:.1f} s; result:")
    console.print_json(record.output or "null")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
