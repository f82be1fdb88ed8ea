"""Outages read as lines, not as tracebacks: one when a dependency goes, one when it is back.

A worker retries its database every fraction of a second while the database is away. A
log line (with a traceback) per attempt buried the one fact an operator needs under
hundreds of copies of it: a 28 s PostgreSQL restart wrote about 200 tracebacks per worker.
An :class:`Outage` tracks one dependency's state and logs only its changes: a WARNING
when it first fails (what failed, what is retried and how often), a WARNING when it works
again (after how long, after how many failed attempts); the attempts in between are DEBUG.

Expected infrastructure failures are :class:`legato.errors.Unavailable` (the database is
down, the disk is full, a connection was reset) and ``OSError``. Anything else is a bug,
logged with its traceback, once per distinct error while the outage lasts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from .errors import Unavailable


def expected(exc: BaseException) -> bool:
    """An infrastructure failure that retrying may cure (not a bug)."""
    return isinstance(exc, Unavailable | OSError | TimeoutError)


def one_line(exc: BaseException) -> str:
    """``exc`` as one line: a driver's multi-line message joined."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class Outage:
    """The state of one dependency (``what``: "the database"), logged once per change."""

    def __init__(self, logger: logging.Logger, what: str, **extra: Any) -> None:
        self.log = logger
        self.what = what
        self.extra = extra
        self.since: float | None = None
        self.failures = 0
        self._bugs: set[str] = set()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, retrying: str) -> None:
        """An attempt failed; ``retrying`` says what happens next ("retrying every 0.2 s")."""
        self.failures += 1
        if not expected(exc):
            key = f"{type(exc).__qualname__}: {exc}"
            if key not in self._bugs:  # a bug: its traceback, once while it repeats
                self._bugs.add(key)
                self.log.error(
                    "%s failed unexpectedly; %s",
                    self.what,
                    retrying,
                    exc_info=exc,
                    extra=self.extra,
                )
            else:
                self.log.debug("%s failed again: %s", self.what, one_line(exc), extra=self.extra)
            if self.since is None:
                self.since = time.monotonic()
            return
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning(
                "%s is unavailable: %s; %s", self.what, one_line(exc), retrying, extra=self.extra
            )
        else:
            self.log.debug("%s still unavailable: %s", self.what, one_line(exc), extra=self.extra)

    def ok(self) -> None:
        """An attempt worked: if the dependency was down, say it is back."""
        if self.since is None:
            return
        lasted = time.monotonic() - self.since
        self.log.warning(
            "%s is available again after %.1f s (%d failed attempt%s)",
            self.what,
            lasted,
            self.failures,
            "" if self.failures == 1 else "s",
            extra=self.extra,
        )
        self.since = None
        self.failures = 0
        self._bugs.clear()
