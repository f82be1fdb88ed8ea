"""A clock for tests: time stands still until the test moves it."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta


class VirtualClock:
    """Workflow time that only moves when :meth:`advance` is called.

    Give it to a worker (``Worker(..., clock=clock)``): a run that sleeps an hour waits
    until the test advances the clock past the hour, then completes at once.
    """

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._listeners: list[Callable[[], None]] = []

    def now(self) -> float:
        return self._now

    def on_jump(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def advance(self, duration: float | timedelta) -> None:
        """Move time forward and wake every worker using this clock."""
        step = duration.total_seconds() if isinstance(duration, timedelta) else duration
        if step < 0:
            raise ValueError("a virtual clock only moves forward")
        self._now += step
        for callback in self._listeners:
            callback()
