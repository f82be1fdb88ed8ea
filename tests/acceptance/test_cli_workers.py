"""``legato workers list`` tells a killed worker from a live one.

A worker killed with SIGKILL cannot remove its row; its heartbeat just stops. Once the
last beat is older than ``--dead-after`` it is listed dead (it was once listed as live
17 minutes after the kill).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

from tests.helpers import legato_cli as legato


def _start_worker(db: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "legato", "worker"],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _workers(db: str, *options: str) -> dict[int, dict[str, Any]]:
    listing = legato(db, "workers", "list", "--json", *options)
    assert listing.returncode == 0, listing.stderr
    return {w["pid"]: w for w in map(json.loads, listing.stdout.splitlines())}


def _until(condition: Any, what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"not seen within {timeout:g} s: {what}"
        time.sleep(0.2)


def test_a_worker_killed_with_sigkill_is_listed_dead(db: str) -> None:
    killed = _start_worker(db)
    try:
        _until(lambda: killed.pid in _workers(db), "the worker registered")
        killed_at = time.time()
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=30)
        assert killed.returncode == -signal.SIGKILL
        # Its row stays (nothing could remove it) and its last beat predates the kill.
        row = _workers(db)[killed.pid]
        assert row["heartbeat_at"] <= killed_at
        # With --dead-after 2 it is dead once two seconds pass without a beat from it.
        _until(lambda: time.time() - row["heartbeat_at"] > 2.5, "two seconds past its beat")
        shown = _workers(db, "--dead-after", "2")
        assert shown[killed.pid]["alive"] is False
        table = legato(db, "workers", "list", "--dead-after", "2").stdout
        (line,) = [line for line in table.splitlines() if f"  {killed.pid}  " in line]
        assert "  dead  " in line
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait(timeout=30)
