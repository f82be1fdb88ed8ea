"""Test app: steps whose executions are counted in side-effect files, and steps that crash."""

from __future__ import annotations

import os
import signal
import time

import legato


@legato.step
def effect(path: str, index: int, delay: float) -> int:
    """Sleep, then append a line (the countable side effect) and complete."""
    time.sleep(delay)
    with open(path, "a") as f:
        f.write(f"{index}\n")
        f.flush()
    return index


@legato.workflow
async def steps(path: str, count: int, delay: float) -> int:
    total = 0
    for i in range(count):
        total += await effect(path, i, delay)
    return total


@legato.step
def gated_effect(path: str, gates: str, index: int) -> int:
    """Wait until the file ``gates/INDEX`` exists, then append a line and complete: the
    test decides when each step ends, whatever the machine's speed."""
    while not os.path.exists(os.path.join(gates, str(index))):
        time.sleep(0.01)  # polls for the gate
    with open(path, "a") as f:
        f.write(f"{index}\n")
    return index


@legato.workflow
async def gated_steps(path: str, gates: str, count: int) -> int:
    total = 0
    for i in range(count):
        total += await gated_effect(path, gates, i)
    return total


@legato.workflow
async def greet(name: str) -> str:
    return f"hello {name}"


@legato.workflow
async def wait_then_greet(name: str) -> str:
    data = await legato.wait_for_signal("go")
    return f"hello {name} {data}"


@legato.workflow
async def returns_set() -> object:
    return {1, 2} | {object()}


def _count_start(path: str, attempt: int) -> None:
    with open(path, "a") as f:
        f.write(f"{attempt}\n")
        f.flush()


@legato.step(retry=legato.Retry(max_attempts=2, initial_interval=0.1))
def long_attempt(path: str, seconds: float) -> int:
    """Count each start, then run long enough to be killed in (the first three attempts;
    from the fourth on it returns at once, so without a bound the run would complete)."""
    attempt = legato.step_info().attempt
    _count_start(path, attempt)
    if attempt <= 3:
        time.sleep(seconds)
    return attempt


@legato.workflow
async def one_long_attempt(path: str, seconds: float) -> int:
    return await long_attempt(path, seconds)


def _until_journalled_running(info: legato.StepInfo, timeout: float = 30.0) -> None:
    """Wait until the journal shows this attempt running (as a step running for a while
    would), so that the crash is one the journal can tell about."""
    deadline = time.monotonic() + timeout
    with legato.Client(os.environ["LEGATO_DB"]) as client:
        while time.monotonic() < deadline:
            for entry in client.journal(info.run_id):
                running = entry.status is legato.EntryStatus.RUNNING
                if entry.seq == info.seq and running and entry.attempts == info.attempt:
                    return
            time.sleep(0.02)


@legato.step
def crash_while_poisoned(path: str, poison: str) -> int:
    """Count each start; while the ``poison`` file exists, kill the worker process running
    it (as an OOM kill or a segfault would). Deleting the file is the fix."""
    info = legato.step_info()
    _count_start(path, info.attempt)
    if os.path.exists(poison):
        _until_journalled_running(info)
        os.kill(os.getpid(), signal.SIGKILL)
    return info.attempt


@legato.workflow
async def poisoned(path: str, poison: str) -> int:
    return await crash_while_poisoned(path, poison)
