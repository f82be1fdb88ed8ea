"""What the CLI tests share: a SQLite database per test.

The database file exists (empty) before the test starts, as it would once a worker or
`legato db upgrade` has run: read commands refuse to create one (see
test_cli_database.py for a missing file).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "cli.db"
    sqlite3.connect(path).close()
    assert path.is_file()
    return f"sqlite:///{path}"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real tmpfs of 4 MB (mounting needs root, which the test machine and CI have)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"this test mounts a tmpfs (as root): {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> None:
    """Take every free byte of the file system ``folder`` is on."""
    with open(folder / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    assert os.statvfs(folder).f_bavail == 0


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful), then SIGKILL if it has not ended within 60 s."""
    worker.terminate()
    try:
        worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def outage_lines(log: str) -> list[str]:
    """The WARNING and worse lines of a worker's log, after checking it has no traceback."""
    assert "Traceback" not in log, log[log.find("Traceback") - 600 :][:3000]
    levels = ("WARNING", "ERROR", "CRITICAL")
    return [line for line in log.splitlines() if any(level in line for level in levels)]
