"""Flow control across worker processes: queue limits, per-key limits, rate limits, and
steps routed to the workers that serve their queue."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import legato
from tests.helpers import run

APP = str(Path(__file__).parents[1] / "apps" / "chaos.py")
sys.path.insert(0, str(Path(APP).parent))

import chaos  # noqa: E402

pytestmark = pytest.mark.slow


def workers(db: str, effects: Path, count: int, *args: str) -> list[subprocess.Popen[str]]:
    env = {**os.environ, "LEGATO_DB": db, "LEGATO_CHAOS_DIR": str(effects)}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--app", APP, *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.communicate(timeout=60)


def spans(effects: Path) -> dict[str, tuple[float, float]]:
    """run id -> (start, end) of its step execution, from the workers' effect logs."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for path in effects.glob("effects-*.log"):
        for line in path.read_text().splitlines():
            event, run_id, _, _, at = line.split()
            (starts if event == "start" else ends)[run_id] = float(at)
    return {run_id: (starts[run_id], ends[run_id]) for run_id in starts}


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    level = peak = 0
    for _, change in events:  # an end sorts before a start at the same instant
        level += change
        peak = max(peak, level)
    return peak


def start_runs(db: str, count: int, **options: Any) -> list[str]:
    async def body() -> list[str]:
        async with legato.AsyncClient(db) as client:
            ids = []
            for i in range(count):
                key = options.get("keys") and f"customer-{i % options['keys']}"
                handle = await client.start(
                    chaos.single_step,
                    options.get("seconds", 0.1),
                    queue=options["queue"],
                    concurrency_key=key,
                    run_id=f"{options['queue']}-{i}",
                )
                ids.append(handle.run_id)
            return ids

    return run(body)


def wait_done(db: str, ids: list[str], timeout: float = 120) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db) as client:
            for run_id in ids:
                await client.result(run_id, timeout=timeout)

    run(body)


def set_queue(db: str, name: str, **limits: Any) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db) as client:
            await client.set_queue(name, **limits)

    run(body)


def test_a_global_limit_of_three_holds_across_four_workers(db_url: str, tmp_path: Path) -> None:
    set_queue(db_url, "limited", concurrency=3)
    ids = start_runs(db_url, 24, queue="limited", seconds=0.15)
    procs = workers(db_url, tmp_path, 4, "--queue", "limited", "--concurrency", "10")
    try:
        wait_done(db_url, ids)
    finally:
        stop(procs)
    peak = most_at_once(list(spans(tmp_path).values()))
    print(f"global limit 3 with 4 workers: observed at most {peak} runs at once")
    assert peak == 3  # never more, and the limit was reached (the work was parallel)


def test_a_per_key_limit_of_one_holds(db_url: str, tmp_path: Path) -> None:
    set_queue(db_url, "per-key", key_concurrency=1)
    ids = start_runs(db_url, 16, queue="per-key", seconds=0.1, keys=4)
    procs = workers(db_url, tmp_path, 2, "--queue", "per-key", "--concurrency", "10")
    try:
        wait_done(db_url, ids)
    finally:
        stop(procs)
    found = spans(tmp_path)
    by_key: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for run_id, span in found.items():
        by_key[int(run_id.rsplit("-", 1)[1]) % 4].append(span)
    assert all(most_at_once(s) == 1 for s in by_key.values())
    assert most_at_once(list(found.values())) > 1  # different keys did run in parallel


def test_a_rate_limit_of_twenty_per_second_holds(db_url: str, tmp_path: Path) -> None:
    set_queue(db_url, "rated", rate_limit=20, rate_period=1.0)
    ids = start_runs(db_url, 50, queue="rated", seconds=0.0)
    procs = workers(db_url, tmp_path, 2, "--queue", "rated", "--concurrency", "50")
    try:
        wait_done(db_url, ids)
    finally:
        stop(procs)

    async def started() -> list[float]:
        async with legato.AsyncClient(db_url) as client:
            return sorted([(await client.get(i)).started_at or 0.0 for i in ids])

    times = run(started)
    # In every window of one period, at most 20 runs started (the claim's own clock).
    busiest = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
    print(f"rate limit 20/s: busiest one-second window started {busiest} runs")
    assert busiest <= 20
    assert times[-1] - times[0] >= 1.0  # 50 starts needed more than one period


def test_a_step_routed_to_gpu_runs_only_on_the_gpu_worker(db_url: str, tmp_path: Path) -> None:
    (general,) = workers(db_url, tmp_path, 1, "--queue", "default")
    (gpu,) = workers(db_url, tmp_path, 1, "--queue", "gpu")

    async def body() -> list[Any]:
        async with legato.AsyncClient(db_url) as client:
            handles = [await client.start(chaos.render_frames, 3) for _ in range(5)]
            results = [await client.result(h.run_id, timeout=60) for h in handles]
            journal = await client.journal(handles[0].run_id)
            return [results, journal]

    try:
        results, journal = run(body)
    finally:
        stop([general, gpu])
    for here, *there in results:
        assert here == general.pid  # the workflow and its local step ran on the general worker
        assert there == [gpu.pid] * 3  # every routed step ran on the gpu worker
    routed = [e for e in journal if e.name == "render"]
    assert len(routed) == 3 and all(e.kind is legato.EntryKind.STEP for e in routed)
    assert all(json.loads(e.output or "0") == gpu.pid for e in routed)  # journalled as steps
    assert list(itertools.chain(*[[e.status.value] for e in routed])) == ["completed"] * 3
