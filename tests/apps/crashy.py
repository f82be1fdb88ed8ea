"""Test app: steps whose executions are counted in side-effect files."""

from __future__ import annotations

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
