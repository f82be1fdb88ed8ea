"""A PostgreSQL outage under load reads as a handful of lines in the worker's log.

Before, a worker logged a traceback for every retry while its database was away (about
200 per worker for a 28 s restart). The database here stays up for the other tests:
the worker reaches it through a TCP relay, and the relay is cut for 30 s while runs are
in flight, then restored. The worker must ride it out, log each state change once (no
traceback), and finish every run.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

import legato
from tests.acceptance.conftest import outage_lines, stop_worker
from tests.helpers import run, wait_until
from tests.servers import TcpProxy

OUTAGE_SECONDS = 30
RUNS = 40
APP = Path(__file__).resolve().parents[1] / "apps" / "chaos.py"


@pytest.mark.slow
def test_a_thirty_second_postgres_outage_is_a_few_lines_and_loses_no_run(
    postgres_url: str, tmp_path: Path
) -> None:
    port = int(re.search(r"@[^/:]+:(\d+)/", postgres_url).group(1))  # type: ignore[union-attr]
    proxy = TcpProxy(port)
    through_proxy = postgres_url.replace(f":{port}/", f":{proxy.port}/", 1)
    log_path = tmp_path / "worker.log"
    env = {**os.environ, "LEGATO_DB": through_proxy, "LEGATO_CHAOS_DIR": str(tmp_path)}
    with open(log_path, "w") as log_file:
        worker = subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--app", str(APP), "--concurrency", "20"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
        )
    cut_at = restored_at = 0.0
    try:

        async def body() -> None:
            nonlocal cut_at, restored_at
            async with legato.AsyncClient(postgres_url) as client:
                # By name: the worker loads tests/apps/chaos.py (importing it here would register
                # its workflows a second time, under another module name).
                handles = [await client.start("five_steps", i, 0.05) for i in range(RUNS)]

                async def some_completed() -> bool:
                    return len(await client.list(status="completed", limit=RUNS)) >= 5

                await wait_until(some_completed, timeout=120)
                proxy.cut()
                cut_at = time.time()
                await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself, not a settle pause
                proxy.restore()
                restored_at = time.time()
                for n, handle in enumerate(handles):  # every run finishes, with its result
                    assert await client.result(handle.run_id, timeout=180) == 50 * n + 10
                statuses = {r.status for r in await client.list(limit=RUNS + 1)}
                assert statuses == {legato.RunStatus.COMPLETED}

        run(body)
    finally:
        stop_worker(worker)
        proxy.close()
    log = log_path.read_text()
    noisy = outage_lines(log)
    assert len(noisy) <= 8, "\n".join(noisy)
    assert any("is unavailable" in line for line in noisy), log[-3000:]
    assert any("is available again" in line for line in noisy), log[-3000:]
    assert cut_at and restored_at
