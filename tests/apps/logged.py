"""Test app for the worker's log lines: runs that complete, fail, retry, get taken over,
and a step that calls an HTTP server with a secret in its URL."""

from __future__ import annotations

import asyncio
import os
import time

import httpx

import legato


@legato.step
def double(x: int) -> int:
    return 2 * x


@legato.workflow
async def completes(x: int) -> int:
    return await double(x)


@legato.step(retry=legato.Retry(max_attempts=1))
def breaks() -> None:
    raise ValueError("the ledger is closed")


@legato.workflow
async def fails() -> None:
    await breaks()


@legato.step(retry=legato.Retry(max_attempts=3, initial_interval=0.05))
def flaky(marker: str) -> str:
    """Fails on its first attempt (leaving ``marker``), succeeds on the next."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise ConnectionError("the first attempt always fails")
    return "ok"


@legato.workflow
async def retries(marker: str) -> str:
    return await flaky(marker)


@legato.step
def held(marker: str) -> str:
    """On its first attempt, leave ``marker`` and stay in the step: the test SIGKILLs the
    worker there. The sleep IS the behaviour under test (a step in flight when its worker
    dies); later attempts return at once."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        time.sleep(600)
    return "taken over"


@legato.workflow
async def survives(marker: str) -> str:
    return await held(marker)


@legato.workflow
async def stuck() -> None:
    """Waits on something Legato cannot end: the worker parks it."""
    await asyncio.Event().wait()


@legato.step
def fetch(url: str) -> int:
    return httpx.get(url).status_code


@legato.workflow
async def calls(url: str) -> int:
    return await fetch(url)
