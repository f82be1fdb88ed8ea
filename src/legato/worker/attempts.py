"""One step attempt under its timeout and heartbeat timeout."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..errors import StepTimeout
from ..runtime.definitions import Step
from ..runtime.host import StepInfo


async def watch_attempt(pending: asyncio.Future[Any], step: Step[Any, Any], info: StepInfo) -> Any:
    """Await one attempt, failing it with StepTimeout past its timeout or heartbeat timeout.

    A sync step's thread cannot be stopped: it is left to finish, its result ignored.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    channel = info.channel
    while True:
        waits = []
        if step.timeout is not None:
            waits.append(started + step.timeout - loop.time())
        if step.heartbeat_timeout is not None and channel is not None:
            quiet = time.monotonic() - channel.last_beat
            waits.append(step.heartbeat_timeout - quiet)
        if not waits:
            return await pending
        wait = min(waits)
        if wait > 0:
            done, _ = await asyncio.wait({pending}, timeout=wait)
            if done:
                return pending.result()
            continue  # woke at a deadline: look again (a heartbeat may have moved it)
        pending.cancel()
        # Let a cancelled coroutine (or a killed step process) wind down before moving on,
        # but never wait long for a step that ignores its cancellation.
        await asyncio.wait({pending}, timeout=5)
        if step.timeout is not None and loop.time() >= started + step.timeout:
            raise StepTimeout(
                f"step {step.name!r} (attempt {info.attempt}) did not finish within "
                f"{step.timeout:g}s"
            )
        raise StepTimeout(
            f"step {step.name!r} (attempt {info.attempt}) sent no heartbeat for "
            f"{step.heartbeat_timeout:g}s"
        )
