"""Steps run in a child process (kill_on_timeout): results, errors and deaths come back."""

from __future__ import annotations

import asyncio
import os

import pytest

from legato.worker.isolation import StepProcessDied, run_in_child_process


def add(a: int, b: int) -> tuple[int, int]:
    return a + b, os.getpid()


def refuse(message: str) -> None:
    raise LookupError(message)


class Unpicklable(Exception):
    def __reduce__(self) -> None:  # type: ignore[override]
        raise TypeError("cannot pickle this")


def refuse_oddly() -> None:
    raise Unpicklable("odd failure")


def die() -> None:
    os._exit(3)


def test_the_result_comes_back_from_another_process() -> None:
    total, pid = asyncio.run(run_in_child_process(add, (2, 3), {}))
    assert total == 5 and pid != os.getpid()


def test_an_exception_is_raised_in_the_worker() -> None:
    with pytest.raises(LookupError, match="no such account"):
        asyncio.run(run_in_child_process(refuse, ("no such account",), {}))


def test_an_unpicklable_exception_comes_back_as_its_text() -> None:
    with pytest.raises(RuntimeError, match="Unpicklable: odd failure"):
        asyncio.run(run_in_child_process(refuse_oddly, (), {}))


def test_a_process_that_dies_is_reported() -> None:
    with pytest.raises(StepProcessDied, match=r"exited \(3\)"):
        asyncio.run(run_in_child_process(die, (), {}))
