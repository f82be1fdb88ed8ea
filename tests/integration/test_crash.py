"""Fault injection with real processes: SIGKILL a worker mid-run, SIGTERM it, and share one
SQLite file between a worker, the CLI and another process."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

APP = str(Path(__file__).parents[1] / "apps" / "crashy.py")

pytestmark = pytest.mark.fault


def spawn(db: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "legato", *args],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", *args],
        env={**os.environ, "LEGATO_DB": db},
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the timeout")
        time.sleep(0.02)


def completed_steps(db_path: Path, run_id: str) -> set[int]:
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute(
            "SELECT output FROM journal WHERE run_id = ? AND kind = 'step' "
            "AND status = 'completed'",
            (run_id,),
        ).fetchall()
    return {int(r[0]) for r in rows}


def run_status(db: str, run_id: str) -> dict:  # type: ignore[type-arg]
    return json.loads(cli(db, "runs", "show", run_id, "--json").stdout)


def test_sigkill_mid_run_resumes_without_repeating_completed_steps(tmp_path: Path) -> None:
    db_path = tmp_path / "crash.db"
    db = f"sqlite:///{db_path}"
    effects = tmp_path / "effects.txt"
    payload = json.dumps({"path": str(effects), "count": 10, "delay": 0.15})
    assert cli(db, "start", f"{APP}:steps", "--input", payload, "--id", "crash").returncode == 0

    first = spawn(db, "worker", "--app", APP)
    wait_for(lambda: len(lines(effects)) >= 4)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    done_before_kill = completed_steps(db_path, "crash")
    # Step 3 wrote its line; its result may or may not have been committed yet.
    assert 3 <= len(done_before_kill) < 10

    second = spawn(db, "worker", "--app", APP)
    try:
        wait_for(lambda: run_status(db, "crash")["status"] == "completed")
    finally:
        second.terminate()
        _, log = second.communicate(timeout=30)

    counts = Counter(lines(effects))
    assert sorted(counts) == list(range(10))  # every step ran
    for index in done_before_kill:
        assert counts[index] == 1, f"completed step {index} ran again"
    assert sum(counts.values()) - 10 <= 1  # at most the in-flight step ran twice
    assert run_status(db, "crash")["output"] == sum(range(10))
    # The dead worker's pid is gone, so the new worker took its run over at start instead
    # of waiting out the 15 s lease.
    assert "1 run(s) of dead worker(s)" in log and "on this host freed for take-over" in log
    assert re.search(r"run crash \(\w+\) taken over by worker \S+ from worker", log), log


def test_sigterm_lets_the_step_finish_and_releases_the_run(tmp_path: Path) -> None:
    """SIGTERM with a step in flight: the step finishes and is recorded, nothing more
    runs, the run is released for another worker. Each step waits for its own gate file,
    so the test, not the machine's speed, decides which step is in flight."""
    db = f"sqlite:///{tmp_path / 'term.db'}"
    effects = tmp_path / "effects.txt"
    gates = tmp_path / "gates"
    gates.mkdir()
    payload = json.dumps({"path": str(effects), "gates": str(gates), "count": 3})
    started = cli(db, "start", f"{APP}:gated_steps", "--input", payload, "--id", "term")
    assert started.returncode == 0, started.stderr
    log = tmp_path / "worker.log"
    with log.open("w") as stderr:
        worker = subprocess.Popen(
            [sys.executable, "-m", "legato", "worker", "--app", APP],
            env={**os.environ, "LEGATO_DB": db},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
        )

    def first_step_in_flight() -> bool:  # steps running past 50 ms are marked "running"
        journal = run_status(db, "term")["journal"]
        return [e["status"] for e in journal] == ["running"]

    wait_for(first_step_in_flight)
    worker.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping" in log.read_text())  # it will start no other step
    (gates / "0").touch()  # the step in flight may end now
    worker.wait(timeout=60)
    assert worker.returncode == 0, log.read_text()
    record = run_status(db, "term")
    assert record["status"] == "pending" and record["owner"] is None
    assert [e["status"] for e in record["journal"]] == ["completed"]  # finished, recorded
    assert lines(effects) == [0]  # and nothing else ran
    for index in (1, 2):
        (gates / str(index)).touch()
    done = cli(db, "run", f"{APP}:gated_steps", "--input", payload, "--id", "term")
    assert done.returncode == 0, done.stderr
    assert lines(effects) == [0, 1, 2]


def test_worker_cli_and_another_process_share_the_file_without_lock_errors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.db"
    db = f"sqlite:///{path}"
    worker = spawn(db, "worker", "--app", APP, "--concurrency", "50")
    # Read commands never create a database: list runs once the worker has made it (on
    # a loaded machine the first listing came before the worker's first write).
    wait_for(path.exists)
    starter_code = (
        "import legato, sys\n"
        f"sys.path.insert(0, {str(Path(APP).parent)!r})\n"
        "import crashy\n"
        "with legato.Client(sys.argv[1]) as c:\n"
        "    for i in range(300):\n"
        "        c.start(crashy.greet, f'p{i}', run_id=f'p{i}')\n"
    )
    starter = subprocess.Popen(
        [sys.executable, "-c", starter_code, db], stderr=subprocess.PIPE, text=True
    )
    try:
        listings = 0
        while starter.poll() is None:
            done = cli(db, "runs", "list", "--limit", "5")
            assert done.returncode == 0, done.stderr
            listings += 1
        assert starter.returncode == 0, starter.stderr.read() if starter.stderr else ""
        wait_for(
            lambda: (
                len(
                    cli(
                        db, "runs", "list", "--status", "completed", "--limit", "1000", "--json"
                    ).stdout.splitlines()
                )
                == 300
            )
        )
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert listings >= 1
    assert "locked" not in stderr.lower()
    assert worker.returncode == 0
