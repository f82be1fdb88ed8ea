"""Legato's side of the benchmark: workloads W1-W4, W8 on SQLite or PostgreSQL.

    .venv/bin/python bench/legato_bench.py [--workloads W1,W2,W3,W4,W8]
    .venv/bin/python bench/legato_bench.py --db-kind postgres [--workloads W1,W2,W3,W4,SCALE]
    .venv/bin/python bench/legato_bench.py --workloads BP

Prints one JSON line per measurement on stdout, in the same form as the peer scripts:
``{"system": "legato", "workload": "W1", "metric": "per_step_ms", "value": 0.1, "unit": "ms"}``
(``"system": "legato-pg"`` on PostgreSQL). Each workload runs in a fresh child process
against a fresh database (a temporary SQLite file, or a PostgreSQL database
``bench_legato_<workload>`` created, upgraded and dropped around it), so memory figures
start from a clean baseline.

BP: what a blueprint task costs against a code step. 200 runs of a blueprint of 10 ``set``
tasks and 200 runs of W1's 10-step code workflow, on the same store and worker, in
alternating trials (``--bp-repeat``, default 5); the best trial of each is reported, and
their ratio (blueprint over code; the target is at most 2).

W8 (Legato only): does a signal end a wait while the run is busy in memory? 500 runs, each
``asyncio.gather(legato.wait_for_signal("go"), slow_step(key))`` where the step sleeps 2 s
(``asyncio.sleep``). The runs are started, and each run's signal is sent 0.1 s after its
step started (the step notes its start time in this process; the signals go out one at a
time, in the order the steps started). The runs are started and signalled through a
client with a store of its own (as another process would), so the worker learns of each
signal the way it learns of another process's commits. Per run, the time from just before
``client.signal`` to the signal entry's ``ended_at`` in the journal; max, p50 and p99 are
reported (the target: max at most 0.3 s, where a wait that ended only with the step would
take about 1.9 s), and how many waits did not end before the step did.

SCALE (PostgreSQL only): W1's workflows (``--scale-runs``, default 1,000, of 10 no-op steps
each) are started up front, then 1, 2 and 4 worker processes (each a ``legato.Worker`` that
has opened its store) are released at the same instant; the wall time runs from that
instant to the last run's completion. The runs are split evenly (each worker's concurrency
is runs / workers, so every run is claimed at once). Each worker count is measured
``--scale-repeat`` times, interleaved, and the best trial is reported. Besides workflows/s
it reports the CPU seconds used in the window by the workers, by this database's PostgreSQL
processes and by everything else on the machine, the machine's CPU utilisation, and the
workers' commit counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import legato
from legato.store import open_store

SYSTEM = "legato"  # "legato-pg" when the database is PostgreSQL (set in main)
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgresql://postgres@127.0.0.1:5432")
PG_SCHEMA = "legato"
CHILD_TIMEOUT_S = 300
W4_STEPS = 20
W4_KILL_AFTER = 8
W4_STEP_SLEEP = 0.1
BP_RUNS = 200
BP_TASKS = 10
BP_TARGET = 2.0
W8_RUNS = 500
W8_STEP_S = 2.0
W8_SIGNAL_AFTER_S = 0.1
W8_STARTS: list[tuple[str, float]] = []  # (key, when its step started), in start order
W8_STARTED: set[str] = set()


def emit(workload: str, metric: str, value: float, unit: str) -> None:
    line = {"system": SYSTEM, "workload": workload, "metric": metric, "value": value, "unit": unit}
    print(json.dumps(line), flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- workflows -----------------------------------------------------------------------------
@legato.step
async def noop(i: int) -> int:
    return i


@legato.workflow
async def ten_steps(n: int) -> int:
    total = 0
    for i in range(10):
        total += await noop(i)
    return total


@legato.workflow
async def fan_out(width: int) -> int:
    return sum(await asyncio.gather(*(noop(i) for i in range(width))))


@legato.workflow
async def wait_signal() -> int:
    return int(await legato.wait_for_signal("wake"))


@legato.step
def counted(path: str, index: int) -> int:
    time.sleep(W4_STEP_SLEEP)
    with open(path, "a") as f:
        f.write(f"{index}\n")
    return index


@legato.workflow
async def twenty_steps(path: str) -> int:
    total = 0
    for i in range(W4_STEPS):
        total += await counted(path, i)
    return total


@legato.step
async def slow_step(key: str) -> str:
    if key not in W8_STARTED:  # the first attempt's start (this bench never retries)
        W8_STARTED.add(key)
        W8_STARTS.append((key, time.time()))
    await asyncio.sleep(W8_STEP_S)
    return key


@legato.workflow
async def signal_during_step(key: str) -> int:
    value, _ = await asyncio.gather(legato.wait_for_signal("go"), slow_step(key))
    return int(value)


# -- workloads -----------------------------------------------------------------------------
async def with_worker(db: str, body: Any, **options: Any) -> Any:
    """The worker and the client on stores of their own, as the docs show (and as DBOS's
    client and its workflows are measured): the client's reads are its own. The body
    starts once the worker serves, as DBOS's measurements start after ``DBOS.launch()``."""
    store = open_store(db)
    await store.open()
    worker = legato.Worker(store, **options)
    serving = asyncio.create_task(worker.run())
    client = legato.AsyncClient(db)
    try:
        ready = asyncio.ensure_future(worker.ready())
        await asyncio.wait({ready, serving}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            await serving  # it ended before serving: its error is the bench's
            raise RuntimeError("the worker stopped before it served")
        async with client:
            return await body(client, worker)
    finally:
        worker.stop()
        await serving
        await store.close()


def emit_reads(workload: str, client: legato.AsyncClient, before: int, runs: int) -> None:
    """How many reads the client made while awaiting results: the feed, not polling."""
    reads = client.store.stats["reads"] - before
    emit(workload, "client_reads_per_result", round(reads / runs, 2), "reads")


async def w1(db: str) -> None:
    async def body(client: legato.AsyncClient, worker: legato.Worker) -> None:
        started = time.perf_counter()
        handles = await asyncio.gather(*(client.start(ten_steps, i) for i in range(200)))
        reads = client.store.stats["reads"]
        for h in handles:
            assert await client.result(h.run_id) == 45
        wall = time.perf_counter() - started
        emit_reads("W1", client, reads, len(handles))
        emit("W1", "wall_s", round(wall, 4), "s")
        emit("W1", "workflows_per_s", round(200 / wall, 1), "workflows/s")
        emit("W1", "per_step_ms", round(wall / 2000 * 1000, 4), "ms")

    await with_worker(db, body, concurrency=200)


async def w2(db: str) -> None:
    async def body(client: legato.AsyncClient, worker: legato.Worker) -> None:
        started = time.perf_counter()
        handle = await client.start(fan_out, 500)
        reads = client.store.stats["reads"]
        assert await client.result(handle.run_id) == sum(range(500))
        emit("W2", "wall_s", round(time.perf_counter() - started, 4), "s")
        emit_reads("W2", client, reads, 1)

    await with_worker(db, body)


async def w3(db: str) -> None:
    async def body(client: legato.AsyncClient, worker: legato.Worker) -> None:
        await asyncio.sleep(0.2)
        before = rss_mb()
        started = time.perf_counter()
        handles = [await client.start(wait_signal) for _ in range(1000)]
        while len(await client.list(status="waiting", limit=2000)) < 1000:
            await asyncio.sleep(0.02)
        emit("W3", "start_to_all_waiting_s", round(time.perf_counter() - started, 4), "s")
        emit("W3", "rss_growth_mb", round(rss_mb() - before, 2), "MB")
        emit("W3", "runs_in_worker_memory_while_waiting", len(worker.executions), "runs")
        started = time.perf_counter()
        for i, h in enumerate(handles):
            await client.signal(h.run_id, "wake", i)
        reads = client.store.stats["reads"]
        for i, h in enumerate(handles):
            assert await client.result(h.run_id) == i
        emit("W3", "signal_to_done_s", round(time.perf_counter() - started, 4), "s")
        emit_reads("W3", client, reads, len(handles))

    await with_worker(db, body, concurrency=200)


def w4(db: str, workdir: Path) -> None:
    effects = workdir / "w4_effects.txt"
    me = [sys.executable, __file__, "--db", db, "--effects", str(effects)]
    first = subprocess.Popen([*me, "--w4-child", "first"])
    deadline = time.monotonic() + 60
    while _count_lines(effects) < W4_KILL_AFTER:
        if time.monotonic() > deadline:
            raise RuntimeError("W4: the first worker made no progress")
        time.sleep(0.005)
    first.send_signal(signal.SIGKILL)
    first.wait()
    recorded = _completed_steps(db)
    started = time.perf_counter()
    recover = subprocess.run([*me, "--w4-child", "recover"], timeout=120)
    elapsed = time.perf_counter() - started
    if recover.returncode != 0:
        raise RuntimeError("W4: recovery failed")
    counts = Counter(int(x) for x in effects.read_text().split())
    assert sorted(counts) == list(range(W4_STEPS)), counts
    emit("W4", "duplicated_completed_steps", sum(counts[i] > 1 for i in recorded), "steps")
    emit("W4", "reexecuted_steps", sum(counts.values()) - W4_STEPS, "steps")
    emit("W4", "restart_to_done_s", round(elapsed, 4), "s")


def _count_lines(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


def _completed_steps(db: str) -> set[int]:
    sql = "SELECT output FROM {}journal WHERE run_id = 'w4' AND status = 'completed'"
    if is_postgres(db):
        conninfo, schema = pg_conninfo(db)
        with pg_connect(conninfo) as conn:
            rows = conn.execute(sql.format(f"{schema}.")).fetchall()
    else:
        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(sql.format("")).fetchall()
    return {int(r[0]) for r in rows}


async def w4_child(db: str, effects: str, mode: str) -> None:
    async def body(client: legato.AsyncClient, worker: legato.Worker) -> None:
        if mode == "first":
            await client.start(twenty_steps, effects, run_id="w4")
            await asyncio.sleep(3600)  # killed long before
        else:
            await client.result("w4")
            os._exit(0)  # measured up to completion, not interpreter teardown

    await with_worker(db, body)


def _nearest_rank(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile by nearest rank (p99 of 500: the 495th smallest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * fraction) - 1)]


async def w8(db: str) -> None:
    async def body(_: legato.AsyncClient, worker: legato.Worker) -> None:
        client = legato.AsyncClient(db)  # opens a store of its own, not the worker's
        await client.open()
        try:
            await w8_measure(client)
        finally:
            await client.close()

    await with_worker(db, body, concurrency=W8_RUNS)


async def w8_measure(client: legato.AsyncClient) -> None:
    started = time.perf_counter()
    keys = [f"w8-{i}" for i in range(W8_RUNS)]
    await asyncio.gather(*(client.start(signal_during_step, k, run_id=k) for k in keys))
    sent: dict[str, float] = {}
    step_started: dict[str, float] = {}
    deadline = time.monotonic() + 60
    for index in range(W8_RUNS):  # in the order the steps started
        while len(W8_STARTS) <= index:
            if time.monotonic() > deadline:
                raise RuntimeError(f"W8: only {len(W8_STARTS)} steps started in 60 s")
            await asyncio.sleep(0.002)
        key, at = W8_STARTS[index]
        delay = at + W8_SIGNAL_AFTER_S - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[key] = time.time()
        await client.signal(key, "go", index)
        step_started[key] = at
    for key in keys:
        await client.result(key)
    wall = time.perf_counter() - started
    latency: list[float] = []
    after_step_end = 0  # signals sent once the step had already ended: not a valid trial
    late = 0  # waits that ended no earlier than the step did
    for key in keys:
        journal = await client.journal(key)
        wait = next(e for e in journal if e.kind == "signal" and e.name == "go")
        step = next(e for e in journal if e.kind == "step")
        assert wait.ended_at is not None and step.ended_at is not None, (wait, step)
        latency.append(wait.ended_at - sent[key])
        after_step_end += sent[key] >= step.ended_at
        late += wait.ended_at >= step.ended_at
    offsets = [sent[k] - step_started[k] for k in keys]
    order = sorted(step_started, key=step_started.__getitem__)
    slowest = sorted(zip(latency, keys, strict=True), reverse=True)[:5]
    print(
        f"W8: signals sent {min(offsets):.3f}-{max(offsets):.3f} s after their step started; "
        f"start to all done {wall:.2f} s; slowest waits (s, signal number): "
        + ", ".join(f"{lat:.3f} #{order.index(k)}" for lat, k in slowest),
        file=sys.stderr,
        flush=True,
    )
    emit("W8", "signal_to_wait_end_max_s", round(max(latency), 4), "s")
    emit("W8", "signal_to_wait_end_p50_s", round(_nearest_rank(latency, 0.5), 4), "s")
    emit("W8", "signal_to_wait_end_p99_s", round(_nearest_rank(latency, 0.99), 4), "s")
    emit("W8", "send_after_step_start_max_s", round(max(offsets), 4), "s")
    emit("W8", "signals_sent_after_step_end", after_step_end, "runs")
    emit("W8", "waits_ended_with_or_after_step", late, "runs")
    emit("W8", "start_to_all_done_s", round(wall, 4), "s")


def bp_document() -> str:
    """A blueprint of ``BP_TASKS`` ``set`` tasks, each a jq expression on the previous output."""
    tasks = "".join(f"  - s{i}: {{set: {{n: '${{ .n + {i} }}'}}}}\n" for i in range(BP_TASKS))
    head = "document: {dsl: '1.0.3', namespace: bench, name: ten-sets, version: '1.0.0'}\n"
    return f"{head}do:\n{tasks}"


async def bp(db: str, repeat: int) -> None:
    from legato.blueprint import load_blueprint

    doc = load_blueprint(bp_document(), "ten-sets.yaml")
    expected = {"n": sum(range(BP_TASKS))}

    async def code_trial(client: legato.AsyncClient) -> float:
        started = time.perf_counter()
        handles = await asyncio.gather(*(client.start(ten_steps, i) for i in range(BP_RUNS)))
        for h in handles:
            assert await client.result(h.run_id) == 45
        return time.perf_counter() - started

    async def blueprint_trial(client: legato.AsyncClient) -> float:
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(client.start_blueprint(doc, {"n": 0}) for _ in range(BP_RUNS))
        )
        for h in handles:
            assert await client.result(h.run_id) == expected
        return time.perf_counter() - started

    async def body(client: legato.AsyncClient, worker: legato.Worker) -> None:
        code: list[float] = []
        blueprint: list[float] = []
        for _ in range(repeat):  # alternating, so load from elsewhere hits both alike
            code.append(await code_trial(client))
            blueprint.append(await blueprint_trial(client))
        steps = BP_RUNS * BP_TASKS
        trials = " ".join(f"{c:.3f}/{b:.3f}" for c, b in zip(code, blueprint, strict=True))
        print(f"BP trials, code/blueprint seconds: {trials}", file=sys.stderr, flush=True)
        emit("BP", "code_wall_s", round(min(code), 4), "s")
        emit("BP", "blueprint_wall_s", round(min(blueprint), 4), "s")
        emit("BP", "code_per_step_ms", round(min(code) / steps * 1000, 4), "ms")
        emit("BP", "blueprint_per_task_ms", round(min(blueprint) / steps * 1000, 4), "ms")
        emit("BP", "blueprint_over_code", round(min(blueprint) / min(code), 3), "x")

    await with_worker(db, body, concurrency=BP_RUNS)


# -- PostgreSQL helpers --------------------------------------------------------------------
def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql:", "postgres:"))


def pg_conninfo(db: str) -> tuple[str, str]:
    """A Legato PostgreSQL URL -> (URL psycopg accepts, schema name)."""
    parsed = urlparse(db)
    query = dict(parse_qsl(parsed.query))
    schema = query.pop("schema", "public")
    return urlunparse(parsed._replace(query=urlencode(query))), schema


def pg_connect(conninfo: str, wait_s: float = 30.0) -> Any:
    """An autocommit connection; waits up to ``wait_s`` for a server that is (re)starting."""
    import psycopg

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            print(f"PostgreSQL not available ({exc}); retrying", file=sys.stderr, flush=True)
            time.sleep(1)


@contextlib.contextmanager
def fresh_pg_database(name: str) -> Iterator[str]:
    """Create database ``name`` (dropping a leftover), upgrade Legato's schema in it, drop it
    afterwards. Yields the Legato URL."""
    assert name.startswith("bench_"), name
    with pg_connect(f"{PG_SERVER}/postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_SERVER}/{name}?schema={PG_SCHEMA}"
    try:
        asyncio.run(open_store(url).upgrade())
        yield url
    finally:
        with pg_connect(f"{PG_SERVER}/postgres") as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_database(kind: str, workload: str) -> Iterator[tuple[str, Path]]:
    """(database URL, work folder) for one workload."""
    with tempfile.TemporaryDirectory() as folder:
        if kind == "sqlite":
            yield f"sqlite:///{Path(folder) / 'bench.db'}", Path(folder)
        else:
            with fresh_pg_database(f"bench_legato_{workload.lower()}") as url:
                yield url, Path(folder)


# -- SCALE: W1 on PostgreSQL with 1, 2, 4 worker processes ------------------------------------
def _proc_cpu_s(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _postgres_cpu() -> dict[str, float]:
    """CPU seconds so far of every process of the (local) PostgreSQL server, by pid."""
    found: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == "postgres":
                found[entry.name] = _proc_cpu_s(entry.name)
    return found


def _bench_backends(conn: Any) -> list[str]:
    """PostgreSQL processes working for this measurement: the backends connected to its
    database (except ``conn``, the one that polls) and the server's own background
    processes (WAL writer, checkpointer, ...), not other users' backends."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND "
        "(datname = current_database() OR backend_type <> 'client backend')"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _machine_cpu() -> tuple[float, float, float]:
    """(busy, iowait, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, iowait = values[3], values[4]
    total = sum(values[:8])
    return total - idle - iowait, iowait, total


async def _start_runs(db: str, count: int) -> None:
    store = open_store(db)
    await store.open()
    try:
        client = legato.AsyncClient(store)
        await asyncio.gather(*(client.start(ten_steps, i) for i in range(count)))
    finally:
        await store.close()


def scale_once(db: str, workers: int, runs: int, concurrency: int) -> dict[str, float]:
    """Start ``runs`` W1 workflows, release ``workers`` worker processes, time to all done."""
    asyncio.run(_start_runs(db, runs))
    conninfo, schema = pg_conninfo(db)
    concurrency = concurrency or -(-runs // workers)
    command = [sys.executable, __file__, "--scale-worker", "--db", db]
    children = [
        subprocess.Popen(
            [*command, "--concurrency", str(concurrency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    try:
        for child in children:  # each has opened its store and made its Worker
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError("SCALE: a worker process failed to start")
        with pg_connect(conninfo) as conn:
            count_done = f"SELECT count(*) FROM {schema}.runs WHERE status = 'completed'"
            pg_before, machine_before = _postgres_cpu(), _machine_cpu()
            workers_before = [_proc_cpu_s(c.pid) for c in children]
            go = time.time()
            for child in children:
                assert child.stdin is not None
                child.stdin.write("go\n")
                child.stdin.flush()
            deadline = time.monotonic() + 120
            while conn.execute(count_done).fetchone()[0] < runs:
                if time.monotonic() > deadline:
                    raise RuntimeError("SCALE: the runs did not complete in 120 s")
                time.sleep(0.02)
            workers_cpu = sum(
                _proc_cpu_s(c.pid) - b for c, b in zip(children, workers_before, strict=True)
            )
            pg_after, machine_after = _postgres_cpu(), _machine_cpu()
            pg_pids = _bench_backends(conn)
            first, last = conn.execute(
                f"SELECT min(started_at), max(ended_at) FROM {schema}.runs"
            ).fetchone()
        for child in children:
            child.send_signal(signal.SIGTERM)
        stats = []
        for child in children:
            out, _ = child.communicate(timeout=30)
            stats.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    wall = last - go
    busy, iowait, total = (a - b for a, b in zip(machine_after, machine_before, strict=True))
    claimed = [s["claimed"] for s in stats]
    tick = os.sysconf("SC_CLK_TCK")
    pg_cpu = sum(pg_after[p] - pg_before.get(p, 0.0) for p in pg_pids if p in pg_after)
    return {
        "wall_s": wall,
        "workflows_per_s": runs / wall,
        "go_to_first_claim_s": first - go,
        "worker_cpu_s": workers_cpu,
        "pg_cpu_s": pg_cpu,
        "other_cpu_s": busy / tick - workers_cpu - pg_cpu,
        "machine_cpu_busy_pct": 100 * busy / total,
        "machine_iowait_pct": 100 * iowait / total,
        "commits": sum(s["commits"] for s in stats),
        "ops_per_commit": sum(s["ops"] for s in stats) / max(sum(s["commits"] for s in stats), 1),
        "min_runs_per_worker": min(claimed),
        "max_runs_per_worker": max(claimed),
    }


# What SCALE reports for each worker count: (key in scale_once's result, unit, digits).
SCALE_METRICS = [
    ("workflows_per_s", "workflows/s", 1),
    ("wall_s", "s", 4),
    ("go_to_first_claim_s", "s", 4),
    ("worker_cpu_s", "s", 2),
    ("pg_cpu_s", "s", 2),
    ("other_cpu_s", "s", 2),
    ("machine_cpu_busy_pct", "%", 1),
    ("machine_iowait_pct", "%", 1),
    ("commits", "commits", 0),
    ("ops_per_commit", "ops", 1),
    ("min_runs_per_worker", "runs", 0),
    ("max_runs_per_worker", "runs", 0),
]


def scale(runs: int, worker_counts: list[int], concurrency: int, repeat: int) -> None:
    """Each worker count ``repeat`` times, interleaved (1, 2, 4, 1, 2, 4, ...) so that load
    from elsewhere on the machine hits them alike; the best trial of each is reported."""
    trials: dict[int, list[dict[str, float]]] = {n: [] for n in worker_counts}
    failed = 0
    for attempt in range(repeat):
        for n in worker_counts:
            print(f"legato-pg SCALE {n} worker(s), trial {attempt + 1} ...", file=sys.stderr)
            try:
                with fresh_pg_database(f"bench_legato_scale_{n}") as db:
                    trials[n].append(scale_once(db, n, runs, concurrency))
            except Exception as exc:  # e.g. the server restarted under the trial
                failed += 1
                print(f"SCALE trial FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
    emit("W1-scale", "failed_trials", failed, "trials")
    if any(not t for t in trials.values()):
        raise RuntimeError("SCALE: every trial of some worker count failed")
    best = {n: max(t, key=lambda m: m["workflows_per_s"]) for n, t in trials.items()}
    for n, m in best.items():
        emit(
            "W1-scale", f"w1_scale_{n}_workers_per_s", round(m["workflows_per_s"], 1), "workflows/s"
        )
        worst = min(t["workflows_per_s"] for t in trials[n])
        emit("W1-scale", f"w1_scale_{n}_worst_trial_per_s", round(worst, 1), "workflows/s")
        for key, unit, digits in SCALE_METRICS[1:]:
            emit("W1-scale", f"w1_scale_{n}_{key}", round(m[key], digits or None), unit)
    for n in worker_counts:
        if n != 1 and 1 in best:
            ratio = best[n]["workflows_per_s"] / best[1]["workflows_per_s"]
            emit("W1-scale", f"scaling_{n}_over_1", round(ratio, 3), "x")


async def scale_worker(db: str, concurrency: int) -> None:
    """One SCALE worker process: get ready, wait for "go" on stdin, serve until SIGTERM."""
    store = open_store(db)
    await store.open()
    worker = legato.Worker(store, concurrency=concurrency)
    print("ready", flush=True)
    sys.stdin.readline()  # blocks the loop on purpose: nothing may run before "go"
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, worker.stop)
    await worker.run()
    writes = dict(store.stats)  # type: ignore[attr-defined]
    await store.close()
    stats = {"claimed": worker.runs_claimed, "commits": writes["commits"], "ops": writes["ops"]}
    print(json.dumps(stats), flush=True)


def main() -> None:
    global SYSTEM
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db-kind", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--workloads",
        help="comma-separated; default W1,W2,W3,W4,W8,BP (plus SCALE on postgres)",
    )
    parser.add_argument("--scale-runs", type=int, default=1000)
    parser.add_argument("--scale-workers", default="1,2,4")
    parser.add_argument("--scale-repeat", type=int, default=2, help="trials per worker count")
    parser.add_argument(
        "--scale-concurrency", type=int, default=0, help="per worker; 0: runs / workers"
    )
    parser.add_argument("--bp-repeat", type=int, default=5, help="BP trials of each kind")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--effects", help=argparse.SUPPRESS)
    parser.add_argument("--w4-child", help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.db:
        SYSTEM = "legato-pg" if is_postgres(args.db) else "legato"
    if args.scale_worker:
        signal.alarm(CHILD_TIMEOUT_S)  # a worker left behind by a failed run goes away
        asyncio.run(scale_worker(args.db, args.concurrency))
        return
    if args.w4_child:
        asyncio.run(w4_child(args.db, args.effects, args.w4_child))
        return
    if args.child:
        signal.alarm(CHILD_TIMEOUT_S)  # nothing may hang the benchmark run
        if args.child == "W4":
            w4(args.db, Path(args.workdir))
        elif args.child == "BP":
            asyncio.run(bp(args.db, args.bp_repeat))
        else:
            asyncio.run({"W1": w1, "W2": w2, "W3": w3, "W8": w8}[args.child](args.db))
        return
    SYSTEM = "legato-pg" if args.db_kind == "postgres" else "legato"
    default = "W1,W2,W3,W4,W8,BP,SCALE" if args.db_kind == "postgres" else "W1,W2,W3,W4,W8,BP"
    failed = []
    for workload in (args.workloads or default).upper().split(","):
        print(f"{SYSTEM} {workload} ...", file=sys.stderr, flush=True)
        try:  # a failed workload is reported at the end; the others still run
            if workload == "SCALE":
                if args.db_kind != "postgres":
                    raise SystemExit("SCALE runs on PostgreSQL only (--db-kind postgres)")
                workers = [int(n) for n in args.scale_workers.split(",")]
                scale(args.scale_runs, workers, args.scale_concurrency, args.scale_repeat)
                continue
            with fresh_database(args.db_kind, workload) as (db, folder):
                subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        workload,
                        "--db",
                        db,
                        "--workdir",
                        folder,
                        "--bp-repeat",
                        str(args.bp_repeat),
                    ],
                    check=True,
                    timeout=CHILD_TIMEOUT_S,
                )
        except Exception as exc:
            print(f"{SYSTEM} {workload} FAILED: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(workload)
    if failed:
        raise SystemExit(f"{SYSTEM}: failed workloads: {', '.join(failed)}")


if __name__ == "__main__":
    main()
