"""Test app for fault injection: every step execution is logged with its process and times.

Each process appends to ``$LEGATO_CHAOS_DIR/effects-<pid>.log`` lines
``start|end <run id> <seq> <pid> <time>``, flushed at once, so that a test can tell which
executions happened, in which process, and when (a SIGKILLed process leaves a start
without an end).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import legato

_lock = threading.Lock()


def _log(event: str, run_id: str, seq: str) -> None:
    path = os.path.join(os.environ["LEGATO_CHAOS_DIR"], f"effects-{os.getpid()}.log")
    with _lock, open(path, "a") as f:
        f.write(f"{event} {run_id} {seq} {os.getpid()} {time.time():.6f}\n")
        f.flush()


@legato.step
def work(value: int, seconds: float) -> int:
    info = legato.step_info()
    _log("start", info.run_id, info.seq)
    time.sleep(seconds)
    _log("end", info.run_id, info.seq)
    return value


@legato.workflow
async def five_steps(n: int, seconds: float) -> int:
    total = 0
    for i in range(5):
        total += await work(n * 10 + i, seconds)
    return total


HOLD = "hold"
"""While ``$LEGATO_CHAOS_DIR/hold`` exists, :func:`whoami` does not end: a test keeps the
step in flight for as long as it needs, however slow the machine."""


@legato.step
def whoami(seconds: float) -> int:
    """Sleep (and stay while the hold file exists), then return the pid of the process
    that ran this step."""
    info = legato.step_info()
    _log("start", info.run_id, info.seq)
    time.sleep(seconds)
    while os.path.exists(os.path.join(os.environ["LEGATO_CHAOS_DIR"], HOLD)):
        time.sleep(0.01)  # polls for the test to let the step end
    _log("end", info.run_id, info.seq)
    return os.getpid()


@legato.workflow
async def one_slow_step(seconds: float) -> int:
    return await whoami(seconds)


@legato.workflow
async def single_step(seconds: float) -> int:
    return await work(1, seconds)


@legato.step(queue="gpu")
def render(frame: int) -> int:
    """Routed to workers serving the "gpu" queue."""
    return os.getpid()


@legato.step
def local_pid() -> int:
    return os.getpid()


@legato.workflow
async def render_frames(frames: int) -> list[int]:
    here = await local_pid()
    there = await asyncio.gather(*(render(i) for i in range(frames)))
    return [here, *there]


@legato.step
def cleanup(tag: str) -> str:
    """Logged like every step: a test can tell which process ran the cleanup."""
    info = legato.step_info()
    _log("start", info.run_id, info.seq)
    _log("end", info.run_id, info.seq)
    return tag


@legato.workflow
async def slow_step_then_cleanup(seconds: float) -> int:
    try:
        return await whoami(seconds)
    finally:
        await cleanup("finally")
