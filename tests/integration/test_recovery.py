"""Bounded recovery, with real worker processes SIGKILLed mid-step, on each backend.

An attempt cut short by its worker's death counts toward the step's retry policy; a run
that keeps killing its workers is parked once it passes the worker's ``max_recoveries``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import legato
from legato import EntryStatus, RunStatus

APP = str(Path(__file__).parents[1] / "apps" / "crashy.py")
LEASE = "5"  # a dead worker on this host is noticed at once; the lease is the fallback

pytestmark = pytest.mark.fault


def cli(db: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", *args],
        env={**os.environ, "LEGATO_DB": db, "COLUMNS": "1000"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the timeout")
        time.sleep(0.02)


def lines(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


class Workers:
    """`legato worker` processes, one at a time, each logging to a file of its own."""

    def __init__(self, db: str, folder: Path, *options: str) -> None:
        self.db = db
        self.folder = folder
        self.options = options
        self.started: list[subprocess.Popen[str]] = []

    def spawn(self) -> subprocess.Popen[str]:
        log = open(self.folder / f"worker-{len(self.started)}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "legato",
                "worker",
                "--app",
                APP,
                "--lease",
                LEASE,
                *self.options,
            ],
            env={**os.environ, "LEGATO_DB": self.db},
            stdout=log,
            stderr=log,
            text=True,
        )
        log.close()  # the child has its own copy
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.folder.glob("worker-*.log")))


def test_attempts_cut_short_by_a_dead_worker_count_toward_max_attempts(
    db_url: str, tmp_path: Path
) -> None:
    starts = tmp_path / "starts.txt"  # one line per start of the step: its attempt number
    payload = json.dumps({"path": str(starts), "seconds": 120})
    started = cli(db_url, "start", f"{APP}:one_long_attempt", "--input", payload, "--id", "long")
    assert started.returncode == 0, started.stderr
    workers = Workers(db_url, tmp_path)
    kills = 0
    try:
        with legato.Client(db_url) as client:

            def ended() -> bool:
                return client.get("long").status.is_terminal

            def attempt_in_flight() -> int:  # as the journal shows it (0: none)
                running = [e for e in client.journal("long") if e.status is EntryStatus.RUNNING]
                return running[0].attempts if running else 0

            # Kill the worker whenever a new attempt is in flight, up to three times; then
            # leave the next worker alone. The step allows two attempts: the third worker
            # must fail the run without starting the step again.
            for _ in range(4):
                worker = workers.spawn()
                wait_for(lambda k=kills: ended() or (k < 3 and attempt_in_flight() > k))
                if ended():
                    break
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                kills += 1
            record = client.get("long")
            journal = client.journal("long")
    finally:
        workers.stop_all()

    assert kills == 2, workers.logs()
    assert lines(starts) == [1, 2]  # started exactly max_attempts times
    assert record.status is RunStatus.FAILED
    error = record.error_dict()
    assert error is not None and error["type"] == "legato.errors.StepError"
    assert error["step_error"]["type"] == "legato.errors.StepInterrupted"
    assert error["step_error"]["attempts"] == 2
    assert "was interrupted" in error["step_error"]["message"]
    (entry,) = journal
    assert entry.status is EntryStatus.FAILED and entry.attempts == 2
    assert [a["error"]["type"] for a in entry.attempt_list()] == ["Interrupted", "Interrupted"]


def test_a_run_that_keeps_killing_its_workers_is_parked_then_retried_after_the_fix(
    db_url: str, tmp_path: Path
) -> None:
    starts = tmp_path / "starts.txt"
    poison = tmp_path / "poison"  # while it exists, the step kills its worker
    poison.touch()
    payload = json.dumps({"path": str(starts), "poison": str(poison)})
    started = cli(db_url, "start", f"{APP}:poisoned", "--input", payload, "--id", "pill")
    assert started.returncode == 0, started.stderr
    workers = Workers(db_url, tmp_path, "--max-recoveries", "3")
    deaths = 0
    try:
        with legato.Client(db_url) as client:

            def parked() -> bool:
                return client.get("pill").status is RunStatus.PARKED

            # Start a worker each time the last one died, until one parks the run.
            for _ in range(6):
                worker = workers.spawn()
                wait_for(lambda w=worker: w.poll() is not None or parked())
                if worker.poll() is None:
                    break
                deaths += 1
            record = client.get("pill")
            assert record.status is RunStatus.PARKED, workers.logs()
            shown = cli(db_url, "runs", "show", "pill")

            # The fix, then the operator's retry: the count starts afresh and the run ends.
            poison.unlink()
            retried = cli(db_url, "runs", "retry", "pill")
            assert retried.returncode == 0, retried.stderr
            assert client.get("pill").recoveries == 0
            wait_for(lambda: client.get("pill").status is RunStatus.COMPLETED)
            done = client.get("pill")
    finally:
        workers.stop_all()

    # The first worker and the three that recovered the run died; the fifth parked it.
    assert deaths == 4, workers.logs()
    assert lines(starts) == [1, 2, 3, 4, 5]  # the fifth start is after the retry
    error = record.error_dict()
    assert error is not None and error["type"] == "RecoveryLimitExceeded"
    assert error["recoveries"] == 4 and error["max_recoveries"] == 3
    assert error["in_flight"] == [{"step": "crash_while_poisoned", "seq": "1", "attempt": 4}]
    message = error["message"]
    for part in (
        "run pill (poisoned) keeps killing its workers",
        "while holding it 4 times, more than the 3 recoveries allowed (max_recoveries)",
        "step 'crash_while_poisoned' at position 1 (attempt 4",
        "then `legato runs retry pill`",
    ):
        assert part in message
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert "parked" in text
    assert f"RecoveryLimitExceeded: {' '.join(message.split())}" in text
    assert "taken over 4 time(s) from a worker that died" in text
    assert done.output == "5" and done.recoveries == 0
