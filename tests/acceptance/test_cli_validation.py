"""The ``legato`` command refuses nonsense before acting on it, names what exists when a
name is unknown, serves every ``--app`` it is given, and never shows a password.

Ranges and empty strings of every option are in test_cli_bad_inputs.py (the table in
docs/cli.md); here are the refusals that depend on what the database holds, and the
side effects that must not happen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import legato as legato_api
from tests.helpers import legato_cli as legato

PASSWORD = "pw-9f3c1a"
FAILING = """
import legato

@legato.step(retry=legato.Retry(max_attempts=1))
def boom() -> None:
    raise RuntimeError("no")

@legato.workflow
async def billing() -> None:
    await boom()
"""


def test_resume_and_retry_of_unknown_names_are_refused_naming_what_exists(
    db: str, tmp_path: Path
) -> None:
    app = tmp_path / "bills.py"
    app.write_text(FAILING)
    assert legato(db, "run", f"{app}:billing", "--id", "b1").returncode == 1
    legato(db, "pause", "--queue", "payments", "--no-wait")
    legato(db, "pause", "--workflow", "billing", "--no-wait")
    queue = legato(db, "resume", "--queue", "paymnets")
    assert queue.returncode == 1
    assert "queue 'paymnets' is not paused" in queue.stderr
    assert "queue payments" in queue.stderr and "workflow billing" in queue.stderr
    workflow = legato(db, "resume", "--workflow", "biling")
    assert workflow.returncode == 1 and "workflow 'biling' is not paused" in workflow.stderr
    lines = legato(db, "paused", "--json").stdout.splitlines()
    paused = {json.loads(line)["name"] for line in lines}
    assert paused == {"payments", "billing"}  # nothing was resumed
    legato(db, "resume", "--workflow", "billing")
    retry = legato(db, "runs", "retry", "--workflow", "biling")
    assert retry.returncode == 1
    assert "no run of workflow 'biling' exists; workflows with failed runs: billing" in (
        retry.stderr
    )
    shown = json.loads(legato(db, "runs", "show", "b1", "--json").stdout)
    assert shown["status"] == "failed" and shown["redrives"] == 0  # nothing was retried


def test_rejected_options_change_nothing(db: str, tmp_path: Path) -> None:
    app = tmp_path / "bills.py"
    app.write_text(FAILING)
    for args in (
        ["start", f"{app}:billing", "--id", ""],
        ["start", f"{app}:billing", "--timeout", "-1"],
        ["queues", "set", "payments", "--per", "0", "--rate", "3"],
        ["queues", "set", "payments", "--concurrency", "0"],
    ):
        assert legato(db, *args).returncode == 2, args
    assert legato(db, "runs", "list", "--json").stdout == ""
    assert legato(db, "queues", "list", "--json").stdout == ""


APP_A = """
import legato

@legato.workflow
async def from_a() -> str:
    return "a"
"""
APP_B = """
import legato

@legato.workflow
async def from_b() -> str:
    return "b"
"""
NAMED = """
import legato

billing = legato.App("billing")

@billing.workflow
async def invoice() -> str:
    return "invoiced"
"""


def _worker_serving(db: str, *app_args: str) -> list[str]:
    """Start a worker with these --app options; the workflows it says it serves."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", *app_args],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        with legato_api.Client(db) as client:
            while not client.list_workers():
                assert worker.poll() is None, worker.communicate()[1]
                assert time.monotonic() < deadline, "the worker never registered"
                time.sleep(0.05)
            (record,) = client.list_workers()
            return sorted(w for w in record.workflows if not w.endswith("*"))  # no families
    finally:
        worker.terminate()
        worker.communicate(timeout=30)


def test_app_given_twice_serves_both(db: str, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(APP_A)
    (tmp_path / "b.py").write_text(APP_B)
    (tmp_path / "named.py").write_text(NAMED)
    a, b, named = (str(tmp_path / n) for n in ("a.py", "b.py", "named.py"))
    assert _worker_serving(db, "--app", a, "--app", b) == ["from_a", "from_b"]
    served = _worker_serving(db, "--app", a, "--app", f"{named}:billing")
    assert served == ["from_a", "invoice"]


def test_no_error_shows_the_database_password(tmp_path: Path) -> None:
    """Every error path that quotes the database URL masks its password."""
    urls = [
        f"postgresql://postgres:{PASSWORD}@127.0.0.1/test?schema=bad-name",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test",  # nothing listens there
        f"postgresql://postgres:{PASSWORD}@127.0.0.1/no_such_database",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:99999/test",  # not a port
        f"mysql://root:{PASSWORD}@127.0.0.1/shop",
        f"postgresql://postgres:{PASSWORD}@127.0.0.1/test?schema=bad-name&x=1",
    ]
    commands = [["runs", "list"], ["db", "upgrade"], ["health", "--json"]]
    for url in urls:
        for args in commands:
            done = legato(url, *args)
            assert done.returncode in (1, 2), (url, args, done.stdout, done.stderr)
            assert done.stderr.startswith(("error: ", '{"error"')), done.stderr
            assert PASSWORD not in done.stderr + done.stdout, (url, args, done.stderr)
    worker = legato(f"postgresql://postgres:{PASSWORD}@127.0.0.1:1/test", "worker")
    assert worker.returncode == 1 and PASSWORD not in worker.stderr + worker.stdout
