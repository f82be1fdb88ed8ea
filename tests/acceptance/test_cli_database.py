"""Read commands never create a database; commands that do create one say so, and where.

A mistyped ``--db`` used to create an empty file and report "ok" (``legato health``) or
an empty list: the user saw nothing wrong. Now each read command on a missing SQLite
file says ``no database at PATH`` and exits 1, and leaves no file behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers import legato_cli as legato

READS = [
    ["health"],
    ["runs", "list"],
    ["runs", "show", "r1"],
    ["workers", "list"],
    ["queues", "list"],
    ["paused"],
    ["blueprint", "list"],
    ["blueprint", "show", "shop/order"],
    ["history", "export", "r1"],
    ["signal", "r1", "go"],
    ["cancel", "r1"],
    ["runs", "retry", "r1"],
]
APP = """
import legato

@legato.workflow
async def greet(name: str) -> str:
    return f"hello {name}"
"""


def test_read_commands_on_a_missing_file_say_so_and_create_nothing(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    for args in READS:
        done = legato(f"sqlite:///{path}", *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr == f"error: no database at {path}\n", args
        assert not path.exists(), f"legato {' '.join(args)} created {path}"
    assert sorted(os.listdir(tmp_path)) == []  # no -wal, no -shm either


def test_the_default_database_is_not_created_in_the_current_folder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LEGATO_DB"}
    done = subprocess.run(
        [sys.executable, "-m", "legato", "runs", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1
    assert f"no database at {tmp_path / 'legato.db'}" in done.stderr
    assert not (tmp_path / "legato.db").exists()


def test_commands_that_create_a_database_warn_with_its_path(tmp_path: Path) -> None:
    app = tmp_path / "shop.py"
    app.write_text(APP)
    for args in (
        ["db", "upgrade"],
        ["start", f"{app}:greet", "--input", '"ann"'],
        ["run", f"{app}:greet", "--input", '"ann"'],
    ):
        path = tmp_path / f"new-{args[0]}.db"
        done = legato(f"sqlite:///{path}", *args)
        assert done.returncode == 0, (args, done.stderr)
        assert f"warning: no database at {path}: creating a new one" in done.stderr
        assert path.is_file()
        again = legato(f"sqlite:///{path}", *args)
        assert "warning" not in again.stderr, args  # only when it is new
    runs = legato(f"sqlite:///{tmp_path / 'new-start.db'}", "runs", "list", "--json")
    assert {json.loads(line)["workflow"] for line in runs.stdout.splitlines()} == {"greet"}


def test_a_worker_on_a_new_database_warns_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    worker = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker"],
        env={**os.environ, "LEGATO_DB": f"sqlite:///{path}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        first = worker.stderr.readline()  # the warning comes before the worker starts
        assert first == f"warning: no database at {path}: creating a new one\n"
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
