"""What one failing write costs a SQLite commit group, and how soon a wait sees a run end.

    .venv/bin/python bench/writer_groups.py [--rounds 10]

1. 300 signals sent at once, against the same 300 plus one to a run that has ended (it
   fails with RunEnded): commits each, and the time of each (best of ``--rounds``). Each
   write runs under a savepoint, so the failing one costs its own rollback, not a re-run
   of the group write by write.
2. ``AsyncClient.wait`` on a run that a worker of the same process ends (separate stores,
   as the docs show): the time from the run's end being committed to ``wait`` returning,
   and the client's reads during the wait.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import legato
from legato.records import NewRun, RunStatus
from legato.store import Lease, open_store

NOW = 1_800_000_000.0


async def signals(folder: Path, rounds: int) -> None:
    store = open_store(f"sqlite:///{folder / 'groups.db'}")
    await store.open()
    try:
        await store.create_run(NewRun("ended", "wf", None), NOW)
        (claimed,) = await store.claim_runs("w", 1, NOW, NOW, 30, ["wf"])
        await store.finish_run(
            Lease("ended", "w", claimed.run.lease_epoch), RunStatus.COMPLETED, "1", None, NOW
        )
        timings: dict[bool, list[float]] = {False: [], True: []}
        commits: dict[bool, list[int]] = {False: [], True: []}
        for r in range(rounds):
            for with_failure in (False, True):
                target = f"t{r}{with_failure}"
                await store.create_run(NewRun(target, "other", None), NOW)
                before = store.stats["commits"]
                started = time.perf_counter()
                sends = [store.send_signal(target, "go", str(i), NOW) for i in range(300)]
                if with_failure:
                    sends.append(store.send_signal("ended", "go", None, NOW))
                outcomes = await asyncio.gather(*sends, return_exceptions=True)
                timings[with_failure].append(time.perf_counter() - started)
                commits[with_failure].append(store.stats["commits"] - before)
                failed = [o for o in outcomes if o is not None]
                assert len(failed) == int(with_failure), failed
        alone, mixed = min(timings[False]), min(timings[True])
        print(
            f"300 signals: best {alone * 1000:.1f} ms, {statistics.median(commits[False])} "
            f"commit(s) (median); 300 + 1 to an ended run: best {mixed * 1000:.1f} ms, "
            f"{statistics.median(commits[True])} commit(s); ratio {mixed / alone:.2f}x"
        )
    finally:
        await store.close()


@legato.workflow
async def bench_waits_for_go() -> str:
    await legato.wait_for_signal("go")
    return "done"


async def wait_latency(folder: Path, rounds: int) -> None:
    url = f"sqlite:///{folder / 'feed.db'}"
    store = open_store(url)
    await store.open()
    worker = legato.Worker(store)
    serving = asyncio.create_task(worker.run())
    lags: list[float] = []
    reads: list[int] = []
    try:
        async with legato.AsyncClient(url) as client:
            for _ in range(rounds):
                handle = await client.start(bench_waits_for_go)
                while (await client.get(handle.run_id)).status is not RunStatus.WAITING:
                    await asyncio.sleep(0.005)
                before = client.store.stats["reads"]
                waiting = asyncio.ensure_future(client.wait(handle.run_id))
                await asyncio.sleep(0.05)
                await client.signal(handle.run_id, "go")
                record = await waiting
                returned = time.time()
                lags.append(returned - (record.ended_at or returned))
                reads.append(client.store.stats["reads"] - before)
    finally:
        worker.stop()
        await serving
        await store.close()
    print(
        f"wait after the run's end: median {statistics.median(lags) * 1000:.1f} ms, "
        f"max {max(lags) * 1000:.1f} ms; client reads per wait: median "
        f"{statistics.median(reads)}, max {max(reads)}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        await signals(Path(folder), args.rounds)
        await wait_latency(Path(folder), args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
