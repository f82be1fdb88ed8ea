"""Run a sync step in a child process that can be killed at its timeout.

A thread cannot be stopped from outside, so a sync step that overruns its timeout keeps
its thread busy. Steps declared with ``kill_on_timeout=True`` run here instead: the worker
forks, the child calls the function and sends back its result (pickled), and a timeout
kills the child. Forking copies the worker's memory, so the function and its arguments
need not be importable or picklable; only the result (or exception) crosses back.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any


class StepProcessDied(RuntimeError):
    """The child process running a step ended without sending a result."""


def _child_main(
    conn: Connection, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        try:
            conn.send((True, fn(*args, **kwargs)))
        except BaseException as exc:
            try:
                conn.send((False, exc))
            except Exception:  # the exception itself cannot be pickled: send its text
                conn.send((False, RuntimeError(f"{type(exc).__qualname__}: {exc}")))
    finally:
        conn.close()
        os._exit(0)  # no atexit handlers, no flushing of the parent's copied buffers


async def run_in_child_process(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Call ``fn(*args, **kwargs)`` in a forked child; cancelling this kills the child."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child_main, args=(sender, fn, args, kwargs), daemon=True)
    process.start()
    sender.close()
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(receiver.fileno(), on_readable)
    try:
        await readable
        try:
            ok, value = receiver.recv()
        except EOFError:
            process.join(timeout=5)
            raise StepProcessDied(
                f"the process running the step exited ({process.exitcode}) without a result"
            ) from None
        if ok:
            return value
        raise value
    finally:
        loop.remove_reader(receiver.fileno())
        if process.is_alive():
            process.kill()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(process.join, 5)
        receiver.close()
