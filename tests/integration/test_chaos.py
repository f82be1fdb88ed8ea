"""Many worker processes on PostgreSQL, killed at random, stopped past their leases, and
the database restarted under them: every run completes, no completed step runs again, and
no run is ever executed by two workers at once."""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest

APP = str(Path(__file__).parents[1] / "apps" / "chaos.py")

pytestmark = [pytest.mark.fault, pytest.mark.slow]


class Cluster:
    """Worker processes of tests/apps/chaos.py on one database."""

    def __init__(self, db: str, effects: Path, *worker_args: str) -> None:
        self.db = db
        self.effects = effects
        self.worker_args = worker_args
        self.workers: list[subprocess.Popen[str]] = []
        self.killed_at: dict[int, float] = {}
        self._logs: dict[int, Path] = {}

    def spawn(self) -> subprocess.Popen[str]:
        env = {**os.environ, "LEGATO_DB": self.db, "LEGATO_CHAOS_DIR": str(self.effects)}
        # stderr to a file: readable while the worker runs, and never a full pipe.
        log = self.effects / f"worker-{len(self._logs)}.stderr"
        proc = subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--app", APP, *self.worker_args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )
        self._logs[proc.pid] = log
        self.workers.append(proc)
        return proc

    def log_of(self, proc: subprocess.Popen[str]) -> str:
        """What the worker has logged so far."""
        return self._logs[proc.pid].read_text()

    def kill(self, proc: subprocess.Popen[str]) -> None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        self.killed_at[proc.pid] = time.time()
        self.workers.remove(proc)

    def stop_all(self) -> dict[int, str]:
        """Stop every worker gracefully; return each one's log (stderr) by pid."""
        for proc in self.workers:
            proc.terminate()
        for proc in self.workers:
            proc.wait(timeout=60)
        logs = {proc.pid: self.log_of(proc) for proc in self.workers}
        self.workers.clear()
        return logs


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def show(db: str, run_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(cli(db, "runs", "show", run_id, "--json").stdout)
    return shown


def executions(effects: Path) -> list[dict[str, Any]]:
    """Every step execution: run, seq, pid, start and end (None if the process died)."""
    started: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    ended: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for path in effects.glob("effects-*.log"):
        for line in path.read_text().splitlines():
            event, run_id, seq, pid, at = line.split()
            (started if event == "start" else ended)[(run_id, seq, int(pid))].append(float(at))
    found = []
    for key, starts in started.items():
        ends = sorted(ended.get(key, []))
        for i, start in enumerate(sorted(starts)):
            end = ends[i] if i < len(ends) else None
            found.append({"run": key[0], "seq": key[1], "pid": key[2], "start": start, "end": end})
    return found


def schema_of(db: str) -> str:
    return db.split("schema=")[1]


def query(server: str, db: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(server) as conn:
        conn.execute(f'SET search_path TO "{schema_of(db)}"')
        return conn.execute(sql).fetchall()


def check_no_overlap_and_no_rerun_after_completion(
    server: str, db: str, effects: Path, killed_at: dict[int, float]
) -> int:
    """The two safety properties; returns how many executions were repeats."""
    completed = {
        (run_id, seq): ended_at
        for run_id, seq, ended_at in query(
            server, db, "SELECT run_id, seq, ended_at FROM journal WHERE status = 'completed'"
        )
    }
    runs = defaultdict(list)
    repeats: dict[tuple[str, str], int] = defaultdict(int)
    for e in executions(effects):
        done = completed[(e["run"], e["seq"])]
        # A completed step never starts again: every execution began before the result
        # was recorded.
        assert e["start"] <= done, f"step {e['seq']} of {e['run']} ran after it completed"
        end = e["end"] if e["end"] is not None else killed_at[e["pid"]]
        runs[e["run"]].append((e["start"], end, e["pid"]))
        repeats[(e["run"], e["seq"])] += 1
    for run_id, spans in runs.items():
        spans.sort()
        for (_, end, pid), (start, _, other) in itertools.pairwise(spans):
            assert pid == other or start >= end, f"run {run_id} ran in {pid} and {other} at once"
    return sum(n - 1 for n in repeats.values())


def test_chaos_four_workers_killed_at_random(
    postgres_url: str, postgres_server: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    effects.mkdir()
    cluster = Cluster(postgres_url, effects, "--concurrency", "40")
    script = (
        "import legato, sys\n"
        f"sys.path.insert(0, {str(Path(APP).parent)!r})\n"
        "import chaos\n"
        "with legato.Client(sys.argv[1]) as c:\n"
        "    for i in range(2000):\n"
        "        c.start(chaos.five_steps, i, 0.002, run_id=f'c{i}')\n"
    )
    subprocess.run([sys.executable, "-c", script, postgres_url], check=True, timeout=300)
    for _ in range(4):
        cluster.spawn()
    rng = random.Random(7)
    kills = 0
    try:
        for _ in range(6):
            time.sleep(rng.uniform(0.5, 1.5))  # the behaviour under test: kills at random
            cluster.kill(rng.choice(cluster.workers))
            kills += 1
            cluster.spawn()
        deadline = time.monotonic() + 240
        while True:
            (done,) = query(
                postgres_server,
                postgres_url,
                "SELECT count(*) FROM runs WHERE status = 'completed'",
            )[0]
            if done == 2000 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        cluster.stop_all()
    assert done == 2000
    wrong = query(
        postgres_server,
        postgres_url,
        "SELECT run_id, output FROM runs WHERE output::int != (substr(run_id, 2)::int * 50 + 10)",
    )
    assert wrong == []  # each run's result is the sum of its five step values
    repeats = check_no_overlap_and_no_rerun_after_completion(
        postgres_server, postgres_url, effects, cluster.killed_at
    )
    # Only steps in flight in a killed worker may run again: at most its concurrency each.
    assert repeats <= kills * 40
    print(f"chaos: 2000 runs x 5 steps, {kills} kills, {repeats} in-flight steps re-run")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_worker_stopped_past_its_lease_writes_nothing_when_it_wakes(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if backend == "sqlite":
        db = f"sqlite:///{tmp_path / 'fence.db'}"
    else:
        db = request.getfixturevalue("postgres_url")
    effects = tmp_path / "effects"
    effects.mkdir()
    cluster = Cluster(db, effects, "--lease", "1")
    hold = effects / "hold"  # the step stays in flight until the test removes it
    hold.touch()
    started = cli(db, "start", f"{APP}:one_slow_step", "--input", "0.1", "--id", "fenced")
    assert started.returncode == 0, started.stderr
    paused = cluster.spawn()
    try:
        deadline = time.monotonic() + 30
        while not list(effects.glob("effects-*.log")):  # the step is in flight
            assert time.monotonic() < deadline
            time.sleep(0.02)
        paused.send_signal(signal.SIGSTOP)
        hold.unlink()  # the steps may end now: the taker's at once, the paused one's on waking
        taker = cluster.spawn()  # takes over once the 1 s lease has expired
        deadline = time.monotonic() + 60
        while (
            json.loads(cli(db, "runs", "show", "fenced", "--json").stdout)["status"] != "completed"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        paused.send_signal(signal.SIGCONT)  # its step finishes; its writes must be refused
        deadline = time.monotonic() + 60
        while not (
            any(e["pid"] == paused.pid and e["end"] for e in executions(effects))
            and "lease lost" in cluster.log_of(paused)
        ):  # its step ended after waking, and its write of the result was refused
            assert time.monotonic() < deadline
            time.sleep(0.05)
        record = show(db, "fenced")
    finally:
        for proc in cluster.workers:
            proc.send_signal(signal.SIGCONT)
        logs = cluster.stop_all()
    assert record["output"] == taker.pid  # the taker's result stands
    (entry,) = record["journal"]
    assert entry["output"] == taker.pid and entry["status"] == "completed"
    assert record["lease_epoch"] == 2  # claimed by the paused worker, then by the taker
    assert "lease lost" in logs[paused.pid]  # it noticed, and stopped the run's copy
    ran_in = {e["pid"] for e in executions(effects)}
    assert ran_in == {paused.pid, taker.pid}  # the paused one did finish its step...
    paused_end = next(e for e in executions(effects) if e["pid"] == paused.pid)["end"]
    assert paused_end is not None  # ...after waking, and its result was not written


def restart_postgres(server: str) -> None:
    """Restart the local PostgreSQL server and wait until it accepts connections again."""
    (version,) = os.listdir("/etc/postgresql")
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        check=True,
        timeout=120,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(server, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.2)


def test_workers_ride_out_a_postgres_restart(
    postgres_url: str, postgres_server: str, tmp_path: Path
) -> None:
    effects = tmp_path / "effects"
    effects.mkdir()
    cluster = Cluster(postgres_url, effects, "--concurrency", "40", "--lease", "3")
    script = (
        "import legato, sys\n"
        f"sys.path.insert(0, {str(Path(APP).parent)!r})\n"
        "import chaos\n"
        "with legato.Client(sys.argv[1]) as c:\n"
        "    for i in range(300):\n"
        "        c.start(chaos.five_steps, i, 0.02, run_id=f'c{i}')\n"
    )
    subprocess.run([sys.executable, "-c", script, postgres_url], check=True, timeout=300)
    for _ in range(2):
        cluster.spawn()
    try:
        deadline = time.monotonic() + 30
        registered = "SELECT count(*) FROM workers"
        while (  # both workers serve, under load
            len(executions(effects)) < 50
            or query(postgres_server, postgres_url, registered)[0][0] < 2
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        restart_postgres(postgres_server)
        deadline = time.monotonic() + 180
        while True:
            count = "SELECT count(*) FROM runs WHERE status = 'completed'"
            (done,) = query(postgres_server, postgres_url, count)[0]
            if done == 300 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        alive = [proc.poll() is None for proc in cluster.workers]
    finally:
        logs = cluster.stop_all()
    dead_logs = [logs[pid][-6000:] for pid, up in zip(logs, alive, strict=True) if not up]
    assert alive == [True, True], dead_logs  # the workers reconnected by themselves
    assert done == 300
    wrong = query(
        postgres_server,
        postgres_url,
        "SELECT run_id FROM runs WHERE output::int != (substr(run_id, 2)::int * 50 + 10)",
    )
    assert wrong == []
    repeats = check_no_overlap_and_no_rerun_after_completion(
        postgres_server, postgres_url, effects, {}
    )
    assert any("connection" in log.lower() for log in logs.values())  # it did notice
    print(f"postgres restart: 300 runs x 5 steps completed, {repeats} steps re-run")


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_worker_stopped_past_its_lease_runs_no_cleanup_step_when_it_wakes(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The paused worker is kept alive (SIGSTOP, then SIGCONT), not killed: after it wakes
    it must execute nothing more of the run, not even the workflow's ``finally:`` step."""
    if backend == "sqlite":
        db = f"sqlite:///{tmp_path / 'zombie.db'}"
    else:
        db = request.getfixturevalue("postgres_url")
    effects = tmp_path / "effects"
    effects.mkdir()
    env = {**os.environ, "LEGATO_DB": db, "LEGATO_CHAOS_DIR": str(effects)}
    hold = effects / "hold"  # the step stays in flight until the test removes it
    hold.touch()
    started = cli(db, "start", f"{APP}:slow_step_then_cleanup", "--input", "0.1", "--id", "z")
    assert started.returncode == 0, started.stderr
    logs: dict[str, Path] = {}

    def spawn(name: str, lease: str) -> subprocess.Popen[str]:
        logs[name] = tmp_path / f"{name}.log"
        return subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--app", APP, "--lease", lease],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=logs[name].open("w"),
            text=True,
        )

    def wait_for(condition: Any, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    # A long lease, so the paused worker's next heartbeat is not due when it wakes: it
    # learns of the loss from its step's refused write, the case that used to run the
    # cleanup step. The pause outlasting the lease is simulated by expiring it.
    paused = spawn("paused", "30")
    workers = [paused]
    try:
        wait_for(lambda: any(e["pid"] == paused.pid for e in executions(effects)), "the step")

        def marked_running() -> bool:
            journal = show(db, "z")["journal"]
            return bool(journal) and journal[0]["status"] == "running"

        wait_for(marked_running, "the step to be marked running")  # no write left queued
        paused.send_signal(signal.SIGSTOP)  # alive, but (as if) past its lease
        hold.unlink()  # the steps may end now: the taker's at once, the paused one's on waking
        expire_lease(db, "z")
        workers.append(spawn("taker", "5"))
        wait_for(lambda: show(db, "z")["status"] == "completed", "the taker to finish")
        paused.send_signal(signal.SIGCONT)  # its step ends; its write is refused
        wait_for(lambda: "lease lost" in logs["paused"].read_text(), "the paused one to notice")
    finally:
        for proc in workers:
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        for proc in workers:
            proc.wait(timeout=60)
    taker_pid = workers[1].pid
    by_seq: dict[str, set[int]] = defaultdict(set)
    for e in executions(effects):
        by_seq[e["seq"]].add(e["pid"])
    assert by_seq["1"] == {paused.pid, taker_pid}  # the slow step ran in both...
    assert by_seq["2"] == {taker_pid}  # ...but the cleanup step only in the taker
    assert show(db, "z")["output"] == taker_pid


def expire_lease(db: str, run_id: str) -> None:
    """As if the run's owner had been paused past its lease."""
    sql = f"UPDATE runs SET lease_expires_at = 0 WHERE run_id = '{run_id}'"
    if db.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
            conn.execute(sql)
        return
    server = db.split("?")[0]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema_of(db)}"')
        conn.execute(sql)
