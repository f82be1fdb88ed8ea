#!/usr/bin/env python3
"""Peer benchmark: Legato's four benchmark workloads, implemented on DBOS Transact.

Run with the interpreter of the virtual environment made by setup.sh:

    bench/dbos/.venv/bin/python bench/dbos/run_dbos.py [--workloads W1,W2,W3,W4] [--workdir DIR]
    bench/dbos/.venv/bin/python bench/dbos/run_dbos.py --database-url postgresql://user@host:5432

Every measurement is printed to stdout as one JSON object per line:

    {"system": "dbos", "workload": "W1", "metric": "per_step_ms", "value": 4.1, "unit": "ms"}

("system": "dbos-pg" when the system database is PostgreSQL.)

Everything else (progress, DBOS's own log output) goes to stderr.

Each workload runs in a child process of its own (this same file, started
with the hidden ``--child`` option) against a fresh system database: a SQLite
file by default, or, with ``--database-url`` (a PostgreSQL server URL without a
database name), a PostgreSQL database ``bench_dbos_<workload>`` that the driver
creates before the workload and drops after it:
DBOS keeps a process-wide singleton and a global registry, and a fresh
process also gives W3 a clean baseline for its memory measurement. W4 needs
processes anyway, since it kills one mid-workflow and recovers in another.

Workloads:
  W1  200 workflows x 10 sequential no-op steps, all started at once.
  W2  one async workflow fanning out 500 async steps with asyncio.gather.
  W3  1,000 workflows blocked in recv; memory growth, then send-to-done time.
  W4  20-step workflow, SIGKILLed after 8 steps, recovered by a new process.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import pickle
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from dbos import DBOS, DBOSConfig, SetWorkflowID

SYSTEM = "dbos"  # "dbos-pg" when the system database is PostgreSQL (set in main)
DBOS_PG_SCHEMA = "dbos"  # where DBOS keeps its system tables on PostgreSQL (its default)
APP_NAME = "legato-bench-peer"
ALL_WORKLOADS = ("W1", "W2", "W3", "W4")

W1_WORKFLOWS = 200
W1_STEPS = 10
W2_FANOUT = 500
W3_WAITERS = 1000
W3_TOPIC = "w3-wakeup"
W3_RECV_TIMEOUT_S = 900.0
W4_STEPS = 20
W4_KILL_AFTER = 8
W4_STEP_SLEEP_S = 0.1
W4_WORKFLOW_ID = "w4-kill-and-recover"
W4_DONE_MARKER = "W4-CHILD-DONE"

# Wall-clock limits so that nothing can hang the benchmark run.
CHILD_TIMEOUT_S = {"W1": 90.0, "W2": 90.0, "W3": 150.0}
W4_FIRST_CHILD_TIMEOUT_S = 60.0
W4_SECOND_CHILD_TIMEOUT_S = 60.0

# How often our own code polls (for "all waiting", for W4 completion).
# DBOS's defaults (1 s) are kept for everything DBOS polls internally.
OUR_POLL_S = 0.005


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[dbos-bench] {msg}", file=sys.stderr, flush=True)


def emit(workload: str, metric: str, value: float, unit: str) -> None:
    record = {
        "system": SYSTEM,
        "workload": workload,
        "metric": metric,
        "value": value,
        "unit": unit,
    }
    print(json.dumps(record), flush=True)


def rss_mb() -> float:
    """Resident set size of this process in MiB, from /proc/self/status."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")


def is_postgres(db: str) -> bool:
    """``db`` is either a SQLite file path or a PostgreSQL URL."""
    return db.startswith(("postgresql:", "postgres:"))


def system_database_url(db: str) -> str:
    if is_postgres(db):
        return db
    # An absolute path gives four slashes: sqlite:////tmp/x.sqlite
    return "sqlite:///" + os.path.abspath(db)


def remove_db_files(db_path: str) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(db_path + suffix)


def pg_connect(url: str, wait_s: float = 30.0) -> Any:
    """An autocommit connection; waits up to ``wait_s`` for a server that is (re)starting."""
    import psycopg  # installed with dbos

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return psycopg.connect(url, autocommit=True)
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise
            log(f"PostgreSQL not available ({exc}); retrying")
            time.sleep(1)


@contextlib.contextmanager
def fresh_pg_database(server: str, name: str) -> Iterator[str]:
    """Create database ``name`` on ``server`` (dropping a leftover), drop it afterwards."""
    assert name.startswith("bench_"), name
    with pg_connect(f"{server}/postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server}/{name}"
    finally:
        with pg_connect(f"{server}/postgres") as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def launch_dbos(db: str) -> None:
    config: DBOSConfig = {
        "name": APP_NAME,
        "system_database_url": system_database_url(db),
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()


def shutdown_dbos() -> None:
    DBOS.destroy(destroy_registry=False)


# --------------------------------------------------------------------------
# Workflows and steps. They are registered at import time, identically in
# every process: DBOS derives the application version from the registered
# workflow code, and W4's recovering process only picks up pending workflows
# of its own application version.
# --------------------------------------------------------------------------


@DBOS.step()
def w1_step(x: int) -> int:
    return x


@DBOS.workflow()
def w1_workflow(seed: int) -> int:
    total = 0
    for i in range(W1_STEPS):
        total += w1_step(seed + i)
    return total


@DBOS.step()
async def w1_step_async(x: int) -> int:
    return x


@DBOS.workflow()
async def w1_workflow_async(seed: int) -> int:
    total = 0
    for i in range(W1_STEPS):
        total += await w1_step_async(seed + i)
    return total


@DBOS.step()
async def w2_step(i: int) -> int:
    return i


@DBOS.workflow()
async def w2_fanout(n: int) -> int:
    results = await asyncio.gather(*(w2_step(i) for i in range(n)))
    return sum(results)


@DBOS.workflow()
def w3_waiter(i: int) -> Any:
    return DBOS.recv(W3_TOPIC, timeout_seconds=W3_RECV_TIMEOUT_S)


@DBOS.workflow()
async def w3_waiter_async(i: int) -> Any:
    return await DBOS.recv_async(W3_TOPIC, timeout_seconds=W3_RECV_TIMEOUT_S)


@DBOS.step()
def w4_step(side_effect_path: str, index: int) -> int:
    # The side effect: one line per execution, made durable before going on,
    # so that the parent can count every execution of every step.
    with open(side_effect_path, "a") as f:
        f.write(f"{index}\n")
        f.flush()
        os.fsync(f.fileno())
    time.sleep(W4_STEP_SLEEP_S)
    return index


@DBOS.workflow()
def w4_workflow(side_effect_path: str) -> int:
    total = 0
    for i in range(W4_STEPS):
        total += w4_step(side_effect_path, i)
    return total


# --------------------------------------------------------------------------
# W1: 200 workflows x 10 sequential steps
# --------------------------------------------------------------------------


def run_w1_sync() -> float:
    expected = [sum(range(s, s + W1_STEPS)) for s in range(W1_WORKFLOWS)]
    t0 = time.perf_counter()
    handles = [DBOS.start_workflow(w1_workflow, s) for s in range(W1_WORKFLOWS)]
    results = [h.get_result() for h in handles]
    wall = time.perf_counter() - t0
    if results != expected:
        raise AssertionError("W1: wrong workflow results")
    return wall


def run_w1_async() -> float:
    expected = [sum(range(s, s + W1_STEPS)) for s in range(W1_WORKFLOWS)]

    async def main() -> float:
        t0 = time.perf_counter()
        handles = await asyncio.gather(
            *(DBOS.start_workflow_async(w1_workflow_async, s) for s in range(W1_WORKFLOWS))
        )
        results = await asyncio.gather(*(h.get_result() for h in handles))
        wall = time.perf_counter() - t0
        if list(results) != expected:
            raise AssertionError("W1: wrong workflow results")
        return wall

    return asyncio.run(main())


def workload_w1(db_path: str, mode: str) -> None:
    launch_dbos(db_path)
    try:
        log(f"W1: {W1_WORKFLOWS} workflows x {W1_STEPS} steps ({mode} workflows)")
        wall = run_w1_async() if mode == "async" else run_w1_sync()
    finally:
        shutdown_dbos()
    steps = W1_WORKFLOWS * W1_STEPS
    emit("W1", "wall_s", round(wall, 4), "s")
    emit("W1", "workflows_per_s", round(W1_WORKFLOWS / wall, 2), "workflows/s")
    emit("W1", "per_step_ms", round(wall / steps * 1000.0, 4), "ms")


# --------------------------------------------------------------------------
# W2: one workflow fanning out 500 parallel steps
# --------------------------------------------------------------------------


def workload_w2(db_path: str) -> None:
    launch_dbos(db_path)
    try:
        log(f"W2: one workflow, asyncio.gather over {W2_FANOUT} async steps")

        async def main() -> float:
            t0 = time.perf_counter()
            handle = await DBOS.start_workflow_async(w2_fanout, W2_FANOUT)
            total = await handle.get_result()
            wall = time.perf_counter() - t0
            if total != sum(range(W2_FANOUT)):
                raise AssertionError(f"W2: sum is {total}, expected {sum(range(W2_FANOUT))}")
            return wall

        wall = asyncio.run(main())
    finally:
        shutdown_dbos()
    emit("W2", "wall_s", round(wall, 4), "s")


# --------------------------------------------------------------------------
# W3: 1,000 workflows waiting on a message
# --------------------------------------------------------------------------


def waiting_receivers() -> int:
    """How many recv calls of this process are registered and waiting.

    DBOS has no public "blocked in recv" status (a waiting workflow is just
    PENDING), so this counts the receivers registered in the system
    database's in-process wake-up map, which a recv joins right before it
    starts waiting."""
    from dbos._dbos import _get_dbos_instance

    return len(_get_dbos_instance()._sys_db.notifications_map.snapshot())


async def wait_until_all_waiting(n: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while waiting_receivers() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"W3: only {waiting_receivers()}/{n} waiting after {timeout_s}s")
        await asyncio.sleep(OUR_POLL_S)


def count_pending(ids: list[str]) -> int:
    statuses = DBOS.list_workflows(workflow_ids=ids, load_input=False, load_output=False)
    return sum(1 for s in statuses if s.status == "PENDING")


def run_w3_async() -> dict[str, float]:
    async def main() -> dict[str, float]:
        rss_before = rss_mb()
        t0 = time.perf_counter()
        # Started one after another on purpose. Starting them all at once
        # (asyncio.gather) is ~25% quicker to reach "all waiting", but each
        # concurrent start runs on its own thread of DBOS's unbounded executor,
        # leaving ~1,000 idle threads behind and tripling the memory growth.
        handles = []
        for i in range(W3_WAITERS):
            handles.append(await DBOS.start_workflow_async(w3_waiter_async, i))
        await wait_until_all_waiting(W3_WAITERS, timeout_s=60.0)
        t_waiting = time.perf_counter() - t0
        rss_waiting = rss_mb()
        ids = [h.get_workflow_id() for h in handles]
        pending = await asyncio.to_thread(count_pending, ids)
        if pending != W3_WAITERS:
            raise AssertionError(f"W3: {pending} PENDING, expected {W3_WAITERS}")

        t1 = time.perf_counter()
        for i, wid in enumerate(ids):
            await DBOS.send_async(wid, i, W3_TOPIC)
        log(f"W3: {W3_WAITERS} sends took {time.perf_counter() - t1:.2f}s")
        results = await asyncio.wait_for(
            asyncio.gather(*(h.get_result() for h in handles)), timeout=90.0
        )
        t_done = time.perf_counter() - t1
        if list(results) != list(range(W3_WAITERS)):
            raise AssertionError("W3: wrong messages received")
        return {
            "start_to_all_waiting_s": t_waiting,
            "rss_growth_mb": rss_waiting - rss_before,
            "signal_to_done_s": t_done,
        }

    return asyncio.run(main())


def run_w3_sync() -> dict[str, float]:
    rss_before = rss_mb()
    t0 = time.perf_counter()
    handles = [DBOS.start_workflow(w3_waiter, i) for i in range(W3_WAITERS)]
    asyncio.run(wait_until_all_waiting(W3_WAITERS, timeout_s=60.0))
    t_waiting = time.perf_counter() - t0
    rss_waiting = rss_mb()
    ids = [h.get_workflow_id() for h in handles]
    pending = count_pending(ids)
    if pending != W3_WAITERS:
        raise AssertionError(f"W3: {pending} PENDING, expected {W3_WAITERS}")

    t1 = time.perf_counter()
    for i, wid in enumerate(ids):
        DBOS.send(wid, i, W3_TOPIC)
    log(f"W3: {W3_WAITERS} sends took {time.perf_counter() - t1:.2f}s")
    results = [h.get_result() for h in handles]
    t_done = time.perf_counter() - t1
    if results != list(range(W3_WAITERS)):
        raise AssertionError("W3: wrong messages received")
    return {
        "start_to_all_waiting_s": t_waiting,
        "rss_growth_mb": rss_waiting - rss_before,
        "signal_to_done_s": t_done,
    }


def workload_w3(db_path: str, mode: str) -> None:
    launch_dbos(db_path)
    try:
        log(f"W3: {W3_WAITERS} workflows blocked in recv ({mode} workflows)")
        m = run_w3_async() if mode == "async" else run_w3_sync()
    finally:
        shutdown_dbos()
    emit("W3", "rss_growth_mb", round(m["rss_growth_mb"], 2), "MB")
    emit("W3", "start_to_all_waiting_s", round(m["start_to_all_waiting_s"], 4), "s")
    emit("W3", "signal_to_done_s", round(m["signal_to_done_s"], 4), "s")


# --------------------------------------------------------------------------
# W4: kill -9 mid-workflow, recover in a new process
# --------------------------------------------------------------------------


def w4_child(phase: str, db_path: str, side_effect_path: str) -> None:
    """Body of the processes W4 spawns.

    phase "first": start the workflow and run it (the parent kills us).
    phase "recover": launch DBOS, which recovers this executor's pending
    workflows on its own, wait for the workflow, print the marker, exit."""
    launch_dbos(db_path)
    if phase == "first":
        with SetWorkflowID(W4_WORKFLOW_ID):
            handle = DBOS.start_workflow(w4_workflow, side_effect_path)
        handle.get_result()
        # Only reached if the parent failed to kill us.
        print(f"{W4_DONE_MARKER} first-run-completed", flush=True)
        shutdown_dbos()
        return
    result = DBOS.retrieve_workflow(W4_WORKFLOW_ID).get_result(polling_interval_sec=OUR_POLL_S)
    print(f"{W4_DONE_MARKER} {result}", flush=True)
    # The workflow's completion is already committed to SQLite; exit at once so
    # the parent's spawn-to-exit time ends at completion, not at shutdown.
    os._exit(0)


def side_effect_lines(path: str) -> list[int]:
    try:
        with open(path) as f:
            return [int(line) for line in f.read().split()]
    except FileNotFoundError:
        return []


def recorded_step_indexes(db: str, workflow_id: str) -> list[int]:
    """Indexes of the steps whose completion DBOS had checkpointed.

    Read straight from the system database while no DBOS process runs. Each w4_step
    returns its own index, which DBOS stores (with its default serializer, a
    base64-encoded pickle) as the step's output; if that encoding is not what
    we expect, fall back to the order of the recorded steps, which run in
    index order and are the workflow's only operations."""
    sql = (
        "SELECT function_id, function_name, output, error FROM {}operation_outputs "
        "WHERE workflow_uuid = {} ORDER BY function_id"
    )
    if is_postgres(db):
        with pg_connect(db) as pg:
            query = sql.format(f"{DBOS_PG_SCHEMA}.", "%s")
            rows = pg.execute(query, (workflow_id,)).fetchall()
    else:
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute(sql.format("", "?"), (workflow_id,)).fetchall()
        finally:
            conn.close()
    if any(not name.endswith("w4_step") for _, name, _, _ in rows):
        raise AssertionError(f"W4: unexpected operations recorded: {rows}")
    if any(error is not None for _, _, _, error in rows):
        raise AssertionError(f"W4: a step recorded an error: {rows}")
    try:
        indexes = [pickle.loads(base64.b64decode(output)) for _, _, output, _ in rows]
        if all(isinstance(i, int) for i in indexes):
            return indexes
    except Exception:
        pass
    log("W4: could not decode step outputs; mapping checkpoints to steps by order")
    return list(range(len(rows)))


def workload_w4(workdir: str, db_path: str) -> None:
    side_effect_path = os.path.join(workdir, "w4_side_effects.txt")
    if os.path.exists(side_effect_path):
        os.remove(side_effect_path)
    script = os.path.abspath(__file__)
    child_args = ["--db", db_path, "--side-effect-file", side_effect_path]

    log(f"W4: {W4_STEPS}-step workflow, SIGKILL after {W4_KILL_AFTER} steps, recover")
    first = subprocess.Popen(
        [sys.executable, script, "--w4-child", "first", *child_args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + W4_FIRST_CHILD_TIMEOUT_S
        while len(side_effect_lines(side_effect_path)) < W4_KILL_AFTER:
            if first.poll() is not None:
                raise RuntimeError(f"W4: first child exited early ({first.returncode})")
            if time.monotonic() > deadline:
                raise TimeoutError("W4: first child did not reach the kill point")
            time.sleep(OUR_POLL_S)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    lines_at_kill = side_effect_lines(side_effect_path)
    recorded_at_kill = recorded_step_indexes(db_path, W4_WORKFLOW_ID)
    log(
        f"W4: killed with {len(lines_at_kill)} step executions in the side-effect file, "
        f"{len(recorded_at_kill)} steps checkpointed"
    )

    t0 = time.perf_counter()
    second = subprocess.Popen(
        [sys.executable, script, "--w4-child", "recover", *child_args],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, _ = second.communicate(timeout=W4_SECOND_CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        second.kill()
        second.wait()
        raise TimeoutError("W4: recovering child did not finish in time") from None
    restart_to_done = time.perf_counter() - t0
    expected = sum(range(W4_STEPS))
    if second.returncode != 0 or f"{W4_DONE_MARKER} {expected}" not in out:
        raise RuntimeError(f"W4: recovering child failed (rc={second.returncode}, stdout={out!r})")

    executions = side_effect_lines(side_effect_path)
    counts = Counter(executions)
    if set(counts) != set(range(W4_STEPS)):
        raise AssertionError(f"W4: steps missing from the side-effect file: {counts}")
    duplicated_completed = sum(1 for i in recorded_at_kill if counts[i] > 1)
    reexecuted = len(executions) - W4_STEPS
    log(f"W4: step executions per index: {dict(sorted(counts.items()))}")
    emit("W4", "duplicated_completed_steps", duplicated_completed, "steps")
    emit("W4", "reexecuted_steps", reexecuted, "steps")
    emit("W4", "restart_to_done_s", round(restart_to_done, 4), "s")


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def run_child(workload: str, workdir: str, db_path: str, args: argparse.Namespace) -> None:
    if not is_postgres(db_path):
        remove_db_files(db_path)
    if workload == "W1":
        workload_w1(db_path, args.w1_mode)
    elif workload == "W2":
        workload_w2(db_path)
    elif workload == "W3":
        workload_w3(db_path, args.w3_mode)
    elif workload == "W4":
        workload_w4(workdir, db_path)
    else:
        raise ValueError(workload)


def child_timeout(workload: str) -> float:
    return CHILD_TIMEOUT_S.get(
        workload, W4_FIRST_CHILD_TIMEOUT_S + W4_SECOND_CHILD_TIMEOUT_S + 30.0
    )


def run_workload_in_child(workload: str, workdir: str, args: argparse.Namespace) -> bool:
    """Run one workload in a fresh process on a fresh database; relay its JSON lines."""
    if args.database_url is None:
        return run_workload_on(
            os.path.join(workdir, f"dbos_{workload}.sqlite"), workload, workdir, args
        )
    with fresh_pg_database(args.database_url, f"bench_dbos_{workload.lower()}") as url:
        return run_workload_on(url, workload, workdir, args)


def run_workload_on(db_path: str, workload: str, workdir: str, args: argparse.Namespace) -> bool:
    """Run one workload in a fresh process; relay its JSON lines. True on success."""
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        workload,
        "--workdir",
        workdir,
        "--db",
        db_path,
        "--w1-mode",
        args.w1_mode,
        "--w3-mode",
        args.w3_mode,
    ]
    timeout = child_timeout(workload)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        log(f"{workload}: timed out after {timeout:.0f}s")
        relay(out)
        return False
    relay(out)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        log(f"{workload}: FAILED (exit code {proc.returncode}) after {elapsed:.1f}s")
        return False
    log(f"{workload}: done in {elapsed:.1f}s (including process start and DBOS launch)")
    return True


def relay(out: str) -> None:
    for line in out.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("system") == SYSTEM:
            print(json.dumps(record), flush=True)
        elif line.strip():
            print(line, file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="DBOS Transact peer benchmark (SQLite or PostgreSQL)")
    p.add_argument(
        "--workloads",
        default=",".join(ALL_WORKLOADS),
        help="comma-separated subset of W1,W2,W3,W4 (default: all)",
    )
    p.add_argument(
        "--workdir",
        default=None,
        help="directory for the SQLite databases and side-effect files "
        "(default: a temporary directory, removed afterwards)",
    )
    p.add_argument(
        "--database-url",
        default=None,
        help="run on PostgreSQL: the server URL without a database name, such as "
        "postgresql://postgres@127.0.0.1:5432; each workload gets a fresh database "
        "bench_dbos_<workload> there, dropped afterwards (default: SQLite files)",
    )
    # DBOS offers sync workflows (each runs on a thread of its executor) and
    # async ones (coroutines on an event loop). The defaults are what measured
    # best for DBOS here: sync for W1 (a little faster), async for W3 (less
    # than half the memory of 1,000 blocked threads, same latency).
    p.add_argument(
        "--w1-mode",
        choices=("sync", "async"),
        default="sync",
        help="W1 workflow flavour: sync (DBOS.start_workflow) or async "
        "(DBOS.start_workflow_async + asyncio.gather); default sync",
    )
    p.add_argument(
        "--w3-mode",
        choices=("sync", "async"),
        default="async",
        help="W3 workflow flavour: sync (DBOS.recv on executor threads) or async "
        "(DBOS.recv_async on the event loop); default async",
    )
    # Internal: how the driver starts its children.
    p.add_argument("--child", choices=ALL_WORKLOADS, help=argparse.SUPPRESS)
    p.add_argument("--w4-child", choices=("first", "recover"), help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--side-effect-file", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global SYSTEM
    args = parse_args(argv)
    on_postgres = is_postgres(args.db) if args.db else args.database_url is not None
    SYSTEM = "dbos-pg" if on_postgres else "dbos"

    if args.w4_child:
        # Safety net: a W4 child outliving its parent must not run forever.
        signal.alarm(int(W4_FIRST_CHILD_TIMEOUT_S + W4_SECOND_CHILD_TIMEOUT_S))
        w4_child(args.w4_child, args.db, args.side_effect_file)
        return 0
    if args.child:
        # Safety net in case the driver is gone and cannot enforce its timeout.
        signal.alarm(int(child_timeout(args.child)) + 30)
        run_child(args.child, args.workdir, args.db, args)
        return 0

    workloads = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in workloads if w not in ALL_WORKLOADS]
    if unknown:
        print(f"unknown workload(s): {', '.join(unknown)}", file=sys.stderr)
        return 2

    own_workdir = args.workdir is None
    workdir = tempfile.mkdtemp(prefix="dbos-bench-") if own_workdir else args.workdir
    os.makedirs(workdir, exist_ok=True)
    workdir = os.path.abspath(workdir)
    import importlib.metadata

    log(
        f"DBOS Transact {importlib.metadata.version('dbos')} "
        f"on {'PostgreSQL' if on_postgres else 'SQLite'}, "
        f"workdir {workdir}, workloads {','.join(workloads)}, "
        f"W1 {args.w1_mode} workflows, W3 {args.w3_mode} workflows"
    )
    t0 = time.perf_counter()
    failed = []
    try:
        for w in workloads:
            if not run_workload_in_child(w, workdir, args):
                failed.append(w)
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    log(f"total {time.perf_counter() - t0:.1f}s" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
