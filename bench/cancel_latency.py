"""Cancel latency: time from ``client.cancel`` to the run's CANCELLED status while a 30 s
async step is in flight; worker and client on separate stores (as separate processes).

    .venv/bin/python bench/cancel_latency.py

The worker heartbeats every 20 s (lease 60 s), so a cancel seen sooner came by the wake
path into the resident run, not by the heartbeat. Ten runs on each backend.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid

import psycopg

import legato
from legato.store import open_store

SERVER = "postgresql://postgres@127.0.0.1:5432"


@legato.step
async def long_step() -> str:
    await asyncio.sleep(30)
    return "slept"


@legato.workflow
async def one_long() -> str:
    return await long_step()


async def measure(db: str, runs: int = 10) -> list[float]:
    worker_store, client_store = open_store(db), open_store(db)
    await worker_store.open()
    await client_store.open()
    worker = legato.Worker(worker_store, lease_seconds=60)
    serving = asyncio.create_task(worker.run())
    client = legato.AsyncClient(client_store)
    took = []
    for i in range(runs):
        run_id = f"c{i}"
        await client.start(one_long, run_id=run_id)
        while not any(e.status is legato.EntryStatus.RUNNING for e in await client.journal(run_id)):
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        await client.cancel(run_id)
        while (await client.get(run_id)).status is not legato.RunStatus.CANCELLED:
            await asyncio.sleep(0.005)
        took.append(time.perf_counter() - started)
    worker.stop()
    await serving
    await worker_store.close()
    await client_store.close()
    return took


def report(kind: str, took: list[float]) -> None:
    median = statistics.median(took)
    print(f"{kind}: cancel to cancelled, max {max(took):.3f} s, median {median:.3f} s")


async def main() -> None:
    folder = tempfile.mkdtemp()
    report("sqlite", await measure(f"sqlite:///{folder}/cancel.db"))
    name = f"bench_cancel_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        db = f"{SERVER}/{name}"
        await open_store(db).upgrade()
        report("postgres", await measure(db))
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')


if __name__ == "__main__":
    asyncio.run(main())
