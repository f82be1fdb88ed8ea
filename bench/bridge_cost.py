"""What one operation carried from a run's loop to the worker's loop and back costs.

    .venv/bin/python bench/bridge_cost.py [TRIALS]

Every step of a workflow does two such operations (the step's attempt and the write of its
result, ``RunHost._on_worker``): the workflow awaits a future on its run's loop, the work
runs as a task on the worker's loop, and its result comes back through a turn of the run's
loop. This times 200 runs in memory (as in W1) each doing 20 of them with a coroutine that
does nothing, against 200 plain tasks each awaiting the same coroutine and passing once
through the worker's loop (what awaiting a write's future costs at least). Best and median
of TRIALS (default 15) trials, in µs per operation.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time

import legato
from legato.records import ClaimedRun, RunRecord, RunStatus
from legato.worker.run_host import RunHost

RUNS = 200
OPS = 20  # W1: 10 steps x 2 bridged operations


async def nothing() -> bool:
    return True


async def bridged(folder: str) -> float:
    worker = legato.Worker(f"sqlite:///{folder}/unused.db")  # never opened: no store call
    claimed = [ClaimedRun(RunRecord(f"r{i}", "wf", RunStatus.RUNNING)) for i in range(RUNS)]
    hosts = [RunHost(worker, c) for c in claimed]
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    left = [RUNS]

    async def body(host: RunHost) -> None:
        for _ in range(OPS):
            await host._on_worker(nothing, store_call=False)

    def finished(_: object) -> None:
        left[0] -= 1
        if not left[0]:
            done.set_result(None)

    started = time.perf_counter()
    for host in hosts:
        asyncio.Task(body(host), loop=host.run_loop).add_done_callback(finished)
    await done
    return time.perf_counter() - started


async def direct() -> float:
    async def body() -> None:
        for _ in range(OPS):
            await nothing()
            await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(*(body() for _ in range(RUNS)))
    return time.perf_counter() - started


def main() -> None:
    trials = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    across: list[float] = []
    plain: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(trials):
            across.append(asyncio.run(bridged(folder)))
            plain.append(asyncio.run(direct()))
    ops = RUNS * OPS
    for name, times in (("across the loops", across), ("plain await", plain)):
        best, median = min(times) / ops * 1e6, statistics.median(times) / ops * 1e6
        print(f"{name}: best {best:.1f} µs, median {median:.1f} µs per operation")
    extra = (statistics.median(across) - statistics.median(plain)) / ops * 1e6
    print(f"the bridge adds {extra:.1f} µs per operation, {2 * extra:.1f} µs per W1 step")


if __name__ == "__main__":
    main()
