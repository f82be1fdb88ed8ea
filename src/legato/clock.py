"""The workflow clock: real time in production, a virtual one in tests.

Only workflow-visible time (durable sleeps, signal timeouts, ``legato.now()``) follows
this clock. Leases always use real time, because they protect real processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """Where a worker reads the time and learns that time jumped."""

    def now(self) -> float:
        """Seconds since the epoch."""

    def on_jump(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever time moves other than by waiting (virtual clocks)."""


class SystemClock:
    """Real time."""

    def now(self) -> float:
        return time.time()

    def on_jump(self, callback: Callable[[], None]) -> None:
        """Real time never jumps."""
