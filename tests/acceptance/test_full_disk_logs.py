"""A full disk under a SQLite worker reads as a few lines, and no run is lost.

40 s of full disk used to write 125 tracebacks and 413 ERROR lines to a worker's log.
Here the worker's database lives on a 4 MB tmpfs that is filled while runs are in flight
(every write fails with "database or disk is full"), then freed. The worker must say so
once, say when writes work again, and finish every run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

import legato
from tests.acceptance.conftest import fill, outage_lines, stop_worker
from tests.helpers import run, wait_until

APP = Path(__file__).resolve().parents[1] / "apps" / "chaos.py"
RUNS = 30
FULL_SECONDS = 10


@pytest.mark.slow
def test_a_full_disk_is_a_few_lines_and_loses_no_run(small_disk: Path, tmp_path: Path) -> None:
    db = f"sqlite:///{small_disk / 'legato.db'}"
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "LEGATO_DB": db, "LEGATO_CHAOS_DIR": str(tmp_path)}
    with open(log_path, "w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--app", str(APP), "--concurrency", "10"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:

        async def body() -> None:
            async with legato.AsyncClient(db) as client:
                # By name: the worker loads chaos.py; importing it here would register
                # its workflows a second time.
                handles = [await client.start("five_steps", n, 0.05) for n in range(RUNS)]

                async def some_completed() -> bool:
                    return len(await client.list(status="completed", limit=RUNS)) >= 3

                await wait_until(some_completed, timeout=120)
                fill(small_disk)
                await asyncio.sleep(FULL_SECONDS)  # the outage itself, not a settle pause
                (small_disk / "filler").unlink()
                for n, handle in enumerate(handles):  # every run finishes, with its result
                    assert await client.result(handle.run_id, timeout=180) == 50 * n + 10

        run(body)
    finally:
        stop_worker(worker)
    log = log_path.read_text()
    noisy = outage_lines(log)
    # A handful: each of the writer and the worker says unavailable and available again;
    # on a full disk some writes still pass (a page is free), so it may say so twice.
    assert len(noisy) <= 8, "\n".join(noisy)
    assert any("is unavailable" in line and "full" in line for line in noisy), log[-3000:]
    assert any("is available again" in line for line in noisy), log[-3000:]
