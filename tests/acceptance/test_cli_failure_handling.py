"""The ``legato`` command for failure handling: retry after a fix, bulk retry, reset,
pause/resume, history export and the replay check, each in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tests.helpers import legato_cli as legato

EIGHT_STEPS = """
import legato

@legato.step
def work(path: str, i: int) -> int:
    with open(path, "a") as f:
        f.write(f"{i}\\n")
    {bug}
    return i

@legato.workflow
async def eight(path: str) -> int:
    total = 0
    for i in range(1, 9):
        total += await work(path, i)
    return total
"""
BUG = 'if i == 5: raise ValueError("off by one in step 5")'
FIXED = "pass"


def executions(path: Path) -> Counter[int]:
    return Counter(int(line) for line in path.read_text().split())


def test_a_retry_after_fixing_the_bug_does_not_rerun_completed_steps(
    db: str, tmp_path: Path
) -> None:
    app = tmp_path / "pipeline.py"
    effects = tmp_path / "effects.txt"
    app.write_text(EIGHT_STEPS.replace("{bug}", BUG))
    failed = legato(db, "run", f"{app}:eight", "--input", json.dumps(str(effects)), "--id", "p1")
    assert failed.returncode == 1
    assert "off by one in step 5" in failed.stderr
    shown = legato(db, "runs", "show", "p1")
    assert "ValueError" in shown.stdout and "legato runs retry p1" in shown.stdout
    assert "Traceback" in shown.stdout  # the failure's traceback is kept with the run

    app.write_text(EIGHT_STEPS.replace("{bug}", FIXED))  # deploy the fix
    retried = legato(db, "runs", "retry", "p1")
    assert retried.returncode == 0, retried.stderr
    assert "pending again" in retried.stdout
    done = legato(db, "run", f"{app}:eight", "--input", json.dumps(str(effects)), "--id", "p1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("36")
    counts = executions(effects)
    assert [counts[i] for i in range(1, 9)] == [1, 1, 1, 1, 2, 1, 1, 1]

    again = legato(db, "runs", "retry", "p1")
    assert again.returncode == 1
    assert "only failed or parked runs can be retried" in again.stderr

    reset = legato(db, "runs", "reset", "p1", "--to-step", "7")
    assert reset.returncode == 0, reset.stderr
    legato(db, "run", f"{app}:eight", "--input", json.dumps(str(effects)), "--id", "p1")
    counts = executions(effects)
    assert [counts[i] for i in range(1, 9)] == [1, 1, 1, 1, 2, 1, 2, 2]
    record = json.loads(legato(db, "runs", "show", "p1", "--json").stdout)
    assert record["status"] == "completed" and record["redrives"] == 2


def test_bulk_retry_shows_progress_and_counts(db: str, tmp_path: Path) -> None:
    app = tmp_path / "pipeline.py"
    app.write_text(EIGHT_STEPS.replace("{bug}", BUG))
    for n in range(3):
        effects = json.dumps(str(tmp_path / f"e{n}.txt"))
        legato(db, "run", f"{app}:eight", "--input", effects, "--id", f"b{n}")
    listed = legato(db, "runs", "retry", "--workflow", "eight", "--since", "1h", "--dry-run")
    assert listed.returncode == 0, listed.stderr
    assert "3 run(s) would be retried" in listed.stdout
    bulk = legato(db, "runs", "retry", "--workflow", "eight", "--since", "1h")
    assert bulk.returncode == 0, bulk.stderr
    assert "3 of 3 run(s) retried" in bulk.stdout
    assert "retrying 3 run(s)" in bulk.stderr  # the progress bar
    pending = legato(db, "runs", "list", "--status", "pending", "--json")
    assert sorted(json.loads(line)["run_id"] for line in pending.stdout.splitlines()) == [
        "b0",
        "b1",
        "b2",
    ]
    future = legato(db, "runs", "retry", "--workflow", "eight", "--since", "2999-01-01")
    assert "0 of 0 run(s) retried" in future.stdout
    bad = legato(db, "runs", "retry", "--workflow", "eight", "--since", "yesterday")
    assert bad.returncode == 2 and "--since 'yesterday'" in bad.stderr  # a usage error
    nothing = legato(db, "runs", "retry")
    assert nothing.returncode == 2 and "give a run id" in nothing.stderr


def test_pause_and_resume_a_queue_from_the_command_line(db: str) -> None:
    paused = legato(db, "pause", "--queue", "default", "--no-wait")
    assert paused.returncode == 0 and "queue default paused" in paused.stdout
    listed = legato(db, "paused")
    assert "queue default paused since" in listed.stdout
    waited = legato(db, "pause", "--workflow", "eight")
    assert "no run of it is executing" in waited.stdout
    resumed = legato(db, "resume", "--queue", "default")
    assert resumed.returncode == 0 and "queue default resumed" in resumed.stdout
    legato(db, "resume", "--workflow", "eight")
    assert "nothing is paused" in legato(db, "paused").stdout
    both = legato(db, "pause", "--queue", "a", "--workflow", "b")
    assert both.returncode == 2 and "one thing" in both.stderr  # a usage error
    unknown = legato(db, "pause", "no-such-run")
    assert unknown.returncode == 1 and "no run with id" in unknown.stderr


ORDER_V1 = """
import legato

@legato.step
def reserve(sku: str) -> str:
    return f"r-{sku}"

@legato.step
def audit(sku: str) -> None:
    pass

@legato.step
def charge(sku: str) -> str:
    return f"c-{sku}"

@legato.workflow
async def order(sku: str) -> str:
    r = await reserve(sku)
    await legato.wait_for_signal("approved")
    {change}
    return r + await charge(sku)
"""


def test_replay_reports_an_inserted_step_and_accepts_it_behind_patched(
    db: str, tmp_path: Path
) -> None:
    v1 = tmp_path / "v1.py"
    v1.write_text(ORDER_V1.replace("{change}", "pass"))
    started = legato(db, "start", f"{v1}:order", "--input", '"sku1"', "--id", "o1")
    assert started.returncode == 0, started.stderr
    worker = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--app", str(v1)],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(200):
            shown = json.loads(legato(db, "runs", "show", "o1", "--json").stdout)
            if shown["status"] == "waiting":
                break
        legato(db, "signal", "o1", "approved")
        for _ in range(200):
            shown = json.loads(legato(db, "runs", "show", "o1", "--json").stdout)
            if shown["status"] == "completed":
                break
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
    assert shown["status"] == "completed"
    history = tmp_path / "o1.json"
    exported = legato(db, "history", "export", "o1", "-o", str(history))
    assert exported.returncode == 0, exported.stderr
    assert json.loads(history.read_text())["format"] == "legato-history/1"

    same = legato(db, "replay", str(history), "--app", str(v1))
    assert same.returncode == 0, same.stderr
    assert "all 1 histories replay on this code" in same.stdout

    inserted = tmp_path / "v2.py"
    inserted.write_text(ORDER_V1.replace("{change}", "await audit(sku)"))
    broken = legato(db, "replay", str(history), "--app", str(inserted))
    assert broken.returncode == 1
    assert "FAIL o1" in broken.stdout
    assert "'audit'" in broken.stdout and "'charge'" in broken.stdout  # names the step
    assert "would not replay" in broken.stderr

    guarded = tmp_path / "v3.py"
    guarded.write_text(
        ORDER_V1.replace("{change}", 'if legato.patched("audit-orders"):\n        await audit(sku)')
    )
    fine = legato(db, "replay", str(history), "--app", str(guarded))
    assert fine.returncode == 0, fine.stdout + fine.stderr


def test_start_with_a_run_timeout_records_the_deadline(db: str, tmp_path: Path) -> None:
    app = tmp_path / "pipeline.py"
    app.write_text(EIGHT_STEPS.replace("{bug}", FIXED))
    before = time.time()
    started = legato(db, "start", f"{app}:eight", "--input", '"x"', "--id", "t1", "--timeout", "90")
    assert started.returncode == 0, started.stderr
    record = json.loads(legato(db, "runs", "show", "t1", "--json").stdout)
    assert before + 90 <= record["deadline_at"] <= time.time() + 90
    assert "times out at" in legato(db, "runs", "show", "t1").stdout
