"""Test app: a sequence of steps whose executions are counted in a side-effect file."""

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
