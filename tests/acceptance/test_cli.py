"""The real ``legato`` command in a subprocess: happy paths and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import legato_cli as legato

APP = str(Path(__file__).parents[1] / "apps" / "crashy.py")


def test_run_prints_progress_and_the_result(db: str, tmp_path: Path) -> None:
    effects = tmp_path / "effects.txt"
    payload = json.dumps({"path": str(effects), "count": 3, "delay": 0})
    done = legato(db, "run", f"{APP}:steps", "--input", payload, "--id", "r1")
    assert done.returncode == 0, done.stderr
    assert "run r1 of steps started" in done.stdout
    assert done.stdout.count("✓ step effect") == 3
    assert done.stdout.strip().endswith("3")
    shown = legato(db, "runs", "show", "r1", "--json")
    record = json.loads(shown.stdout)
    assert record["status"] == "completed" and record["output"] == 3
    assert [e["output"] for e in record["journal"]] == [0, 1, 2]
    assert all(e["attempts"] == 1 and e["started_at"] for e in record["journal"])
    table = legato(db, "runs", "show", "r1")
    assert "effect" in table.stdout and "completed" in table.stdout


def test_start_signal_worker_list_and_cancel(db: str) -> None:
    started = legato(db, "start", f"{APP}:wait_then_greet", "--input", '"ann"', "--id", "w1")
    assert started.returncode == 0, started.stderr
    assert started.stdout.strip() == "w1"
    other = legato(db, "start", f"{APP}:wait_then_greet", "--input", '"bob"', "--id", "w2")
    assert other.returncode == 0
    sent = legato(db, "signal", "w1", "go", "--data", '{"n": 1}')
    assert sent.returncode == 0, sent.stderr
    worker = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--app", APP],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(200):
            listing = legato(db, "runs", "list", "--json")
            runs = {r["run_id"]: r for r in map(json.loads, listing.stdout.splitlines())}
            if runs["w1"]["status"] == "completed" and runs["w2"]["status"] == "waiting":
                break
        assert runs["w1"]["output"] == "hello ann {'n': 1}"
        workers = legato(db, "workers", "list", "--json")
        (info,) = map(json.loads, workers.stdout.splitlines())
        assert info["pid"] == worker.pid
        cancelled = legato(db, "cancel", "w2")
        assert "cancellation of run w2 requested" in cancelled.stdout
        for _ in range(200):
            shown = json.loads(legato(db, "runs", "show", "w2", "--json").stdout)
            if shown["status"] == "cancelled":
                break
        assert shown["status"] == "cancelled"
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert worker.returncode == 0
    assert "serving" in stderr and f"pid {worker.pid}" in stderr  # identity is logged


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "nope.py:steps"], "no such file: nope.py"),
        (["run", f"{APP}:missing"], "has no workflow named 'missing'"),
        (["run", f"{APP}"], "expected FILE.py:WORKFLOW"),
        (["run", f"{APP}:greet", "--input", "{bad json"], "--input is not valid JSON"),
        (["run", f"{APP}:steps", "--input", '{"path": "x"}'], "input does not fit"),
        (["runs", "show", "no-such-run"], "no run with id 'no-such-run'"),
        (["signal", "no-such-run", "go"], "no run with id 'no-such-run'"),
        (["runs", "list", "--status", "sleeping"], "unknown status 'sleeping'"),
    ],
)
def test_bad_input_gives_one_clear_line(db: str, args: list[str], message: str) -> None:
    done = legato(db, *args)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2


def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    done = legato(f"sqlite:///{tmp_path}/missing-folder/x.db", "runs", "list")
    assert done.returncode == 1
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr
    not_a_db = tmp_path / "text.db"
    not_a_db.write_text("this is not a database" * 100)
    done = legato(f"sqlite:///{not_a_db}", "runs", "list")
    assert done.returncode == 1 and "not a database" in done.stderr
    assert "Traceback" not in done.stderr


def test_unserialisable_result_is_reported(db: str) -> None:
    done = legato(db, "run", f"{APP}:returns_set")
    assert done.returncode == 1
    assert "cannot be stored as JSON" in done.stderr


def test_debug_shows_the_traceback(db: str) -> None:
    done = legato(db, "--debug", "runs", "show", "nope")
    assert done.returncode != 0 and "Traceback" in done.stderr
