"""``legato worker`` logs one record per run event, and only Legato's.

A worker subprocess with ``--log-format json`` serves runs that complete, fail, retry a
step, get parked, and one it takes over from a worker that was SIGKILLed in a step; its
stderr is then read line by line. A plain ``legato worker`` whose step calls an HTTP
server with a secret in the URL must not log that call (httpx logs every request at INFO
when something raises the root logger's level).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import legato
from tests.helpers import legato_cli as legato_cmd
from tests.helpers import poll_until
from tests.servers import LocalServer

APP = str(Path(__file__).parents[1] / "apps" / "logged.py")


def _worker(db: str, log: Path, *options: str) -> subprocess.Popen[str]:
    """A ``legato worker`` serving the test app; its stderr goes to ``log`` (a file, so a
    chatty worker never blocks on a full pipe)."""
    return subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--app", APP, "--lease", "3", *options],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
    )


def _start(db: str, workflow: str, run_id: str, value: Any = None) -> None:
    args = ["start", f"{APP}:{workflow}", "--id", run_id]
    if value is not None:
        args += ["--input", json.dumps(value)]
    done = legato_cmd(db, *args)
    assert done.returncode == 0, done.stderr


def _records(log: Path) -> list[dict[str, Any]]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line is one JSON object


def _about(records: list[dict[str, Any]], run_id: str, words: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("run_id") == run_id and words in r["message"]]


def test_a_json_worker_logs_each_run_event_with_run_workflow_and_worker(
    db: str, tmp_path: Path
) -> None:
    # A first worker is SIGKILLed while a step of run t1 is in flight.
    held = tmp_path / "held.marker"
    _start(db, "survives", "t1", str(held))
    first = _worker(db, tmp_path / "first.log")
    try:
        poll_until(held.exists, 60, "the first worker enters the held step")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(30)

    _start(db, "completes", "c1", 21)
    _start(db, "fails", "f1")
    _start(db, "retries", "r1", str(tmp_path / "flaky.marker"))
    _start(db, "stuck", "p1")
    log = tmp_path / "worker.log"
    second = _worker(db, log, "--log-format", "json", "--log-level", "info")
    try:
        with legato.Client(db) as client:
            ends = {r: client.wait(r, timeout=120).status for r in ("t1", "c1", "f1", "r1", "p1")}
        assert ends == {
            "t1": legato.RunStatus.COMPLETED,
            "c1": legato.RunStatus.COMPLETED,
            "f1": legato.RunStatus.FAILED,
            "r1": legato.RunStatus.COMPLETED,
            "p1": legato.RunStatus.PARKED,
        }
        # A run's end is committed before its record is written: wait for the last ones.
        poll_until(
            lambda: all(
                _about(_records(log), run_id, words)
                for run_id, words in [
                    ("t1", "completed"),
                    ("c1", "completed"),
                    ("f1", "failed"),
                    ("r1", "completed"),
                    ("p1", "parked"),
                ]
            ),
            60,
            "the worker logs every run's end",
        )
    finally:
        second.terminate()
        second.wait(60)
    assert second.returncode == 0

    records = _records(log)
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record)
        assert record["logger"].startswith("legato")
        assert datetime.fromisoformat(record["time"]).utcoffset() is not None  # has a zone
    (serving,) = [r for r in records if "serving app" in r["message"]]
    worker_id = serving["worker"]
    assert worker_id.split(":")[1] == str(second.pid)

    def one(run_id: str, words: str, level: str, workflow: str) -> dict[str, Any]:
        (found,) = _about(records, run_id, words)
        assert found["level"] == level
        assert found["workflow"] == workflow and found["worker"] == worker_id
        assert run_id in found["message"] and workflow in found["message"]
        assert worker_id in found["message"]
        return found

    taken = one("t1", "taken over", "warning", "survives")
    assert f":{first.pid}:" in taken["message"]  # names the worker that died
    assert not _about(records, "t1", "started")  # a take-over is not a fresh start
    one("t1", "completed", "info", "survives")
    for run_id, workflow in [("c1", "completes"), ("f1", "fails"), ("r1", "retries")]:
        one(run_id, "started", "info", workflow)
    one("c1", "completed", "info", "completes")
    failed = one("f1", "failed", "warning", "fails")
    assert "the ledger is closed" in failed["message"]
    retry = one("r1", "retry scheduled", "warning", "retries")
    assert "'flaky'" in retry["message"] and "attempt 1 of 3" in retry["message"]
    one("r1", "completed", "info", "retries")
    one("p1", "started", "info", "stuck")
    parked = one("p1", "parked", "error", "stuck")
    assert "WorkflowStuck" in parked["message"]


def test_log_level_warning_leaves_out_the_info_records(db: str, tmp_path: Path) -> None:
    _start(db, "completes", "c1", 1)
    _start(db, "fails", "f1")
    log = tmp_path / "worker.log"
    worker = _worker(db, log, "--log-format", "json", "--log-level", "warning")
    try:
        with legato.Client(db) as client:
            assert client.wait("c1", timeout=120).status is legato.RunStatus.COMPLETED
            assert client.wait("f1", timeout=120).status is legato.RunStatus.FAILED
        poll_until(lambda: _about(_records(log), "f1", "failed"), 60, "f1's failure logged")
    finally:
        worker.terminate()
        worker.wait(60)
    records = _records(log)
    assert records and all(r["level"] in ("warning", "error") for r in records)
    assert not _about(records, "c1", "")  # its records are all info


def test_the_worker_logs_no_other_library_and_no_secret_in_a_url(db: str, tmp_path: Path) -> None:
    secret = "s3cret-token-4711"
    log = tmp_path / "worker.log"
    worker = _worker(db, log)  # the defaults: --log-level info --log-format text
    try:
        with LocalServer() as server:
            _start(db, "calls", "h1", f"{server.url}/anything?token={secret}")
            with legato.Client(db) as client:
                done = client.wait("h1", timeout=120)
            assert done.status is legato.RunStatus.COMPLETED, done.error
            assert server.hits["/anything"] == 1
    finally:
        worker.terminate()
        worker.wait(60)
    text = log.read_text()
    assert "serving app" in text  # the log was written
    assert secret not in text
    assert "httpx" not in text and "HTTP Request" not in text
