"""Helpers for tests: run async bodies, a worker beside the test, polling, processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import legato
from legato.store import Store, open_store

T = TypeVar("T")


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run an async test body on a fresh event loop."""
    return asyncio.run(coro_fn())


@contextlib.asynccontextmanager
async def running_worker(
    db: str | Store, **options: Any
) -> AsyncIterator[tuple[legato.Worker, legato.AsyncClient]]:
    """A worker serving ``db`` in this loop, and a client on the same store."""
    store = open_store(db) if isinstance(db, str) else db
    if isinstance(db, str):
        await store.open()
    worker = legato.Worker(store, **options)
    task = asyncio.create_task(worker.run())
    client = legato.AsyncClient(store)
    try:
        yield worker, client
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        if isinstance(db, str):
            await store.close()


async def wait_until(
    predicate: Callable[[], Any], timeout: float = 20.0, what: str = "the condition"
) -> None:
    """Poll an async or sync predicate until it is true; fail naming ``what`` if it is
    still false after ``timeout`` seconds (generous: a loaded 2-core machine is slow)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:g}s")
        await asyncio.sleep(0.01)


def poll_until(
    predicate: Callable[[], Any], timeout: float = 30.0, what: str = "the condition"
) -> Any:
    """Outside an event loop: call ``predicate`` until it returns something true, and
    return that; fail naming ``what`` if it is still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout:g}s")
        time.sleep(0.02)  # the poll interval, not a wait for something to happen


def live_processes_mentioning(text: str) -> list[int]:
    """The ids of processes on this host whose command line contains ``text``, not counting
    ones that have exited (zombies).

    A test that asserts a command did *not* run waits until this is empty first: a command
    that was spawned has then either done its work or never will, so checking its side
    effect afterwards is not a race. Linux only (it reads ``/proc``).
    """
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry.name}/stat") as f:
                state = f.read().rpartition(")")[2].split()[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue  # it exited while we looked, or is not ours to read
        if text in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def status_is(client: legato.AsyncClient, run_id: str, status: legato.RunStatus) -> Any:
    """A predicate for wait_until: the run is in ``status``."""

    async def check() -> bool:
        return (await client.get(run_id)).status is status

    return check


def legato_cli(db: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m legato ARGS`` on ``db`` in a subprocess; capture its output."""
    env = {**os.environ, "LEGATO_DB": db, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "legato", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
