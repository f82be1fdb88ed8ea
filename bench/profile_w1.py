"""Where W1's time goes: a cProfile of W1 and the storage floor it is compared with.

    .venv/bin/python bench/profile_w1.py

Prints (1) W1's per-step cost and the CPU the event loop's thread spent per step, (2) the
floor: the same number of journal rows written with raw sqlite3 in groups of the size the
worker actually commits (no Legato), and (3) the functions with the most own time during W1.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import legato_bench

import legato
from legato.store import open_store


async def w1(db: str) -> tuple[float, dict[str, int]]:
    store = open_store(db)
    await store.open()
    worker = legato.Worker(store, concurrency=200)
    serving = asyncio.create_task(worker.run())
    client = legato.AsyncClient(store)
    started, cpu = time.perf_counter(), time.thread_time()
    handles = await asyncio.gather(*(client.start(legato_bench.ten_steps, i) for i in range(200)))
    for h in handles:
        await client.result(h.run_id)
    wall = time.perf_counter() - started
    stats = dict(store.stats)  # type: ignore[attr-defined]
    stats["loop_cpu_us"] = round((time.thread_time() - cpu) * 1e6)  # the event loop's thread
    worker.stop()
    await serving
    await store.close()
    return wall, stats


def floor(rows: int, group: int, folder: Path) -> float:
    """Seconds to write ``rows`` journal-sized rows with raw sqlite3, ``group`` per commit."""
    conn = sqlite3.connect(folder / "floor.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE j (run_id TEXT, seq TEXT, body TEXT, PRIMARY KEY (run_id, seq))")
    started = time.perf_counter()
    for first in range(0, rows, group):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO j VALUES (?, ?, ?)",
            [(f"run{i // 10}", str(i % 10), '{"output": 1}') for i in range(first, first + group)],
        )
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        wall, stats = asyncio.run(w1(f"sqlite:///{Path(folder) / 'plain.db'}"))
    steps = 2000
    print(f"W1: {wall:.3f} s for {steps} steps = {wall / steps * 1e6:.0f} µs per step")
    print(f"    the event loop's thread used {stats['loop_cpu_us'] / steps:.0f} µs of CPU per step")
    print(
        f"    {stats['commits']} commits for {stats['ops']} writes "
        f"({stats['ops'] / max(stats['commits'], 1):.0f} writes per commit)"
    )
    group = max(1, round(stats["ops"] / max(stats["commits"], 1)))
    with tempfile.TemporaryDirectory() as folder:
        raw = floor(stats["ops"], group, Path(folder))
    print(
        f"floor: raw sqlite3, {stats['ops']} rows in groups of {group}: {raw:.3f} s "
        f"= {raw / steps * 1e6:.0f} µs per step ({raw / wall:.0%} of W1)"
    )
    with tempfile.TemporaryDirectory() as folder:
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(w1(f"sqlite:///{Path(folder) / 'profiled.db'}"))
        profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
    print("\n".join(out.getvalue().splitlines()[:45]))


if __name__ == "__main__":
    main()
