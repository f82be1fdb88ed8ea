"""Retry policies for steps."""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta


def seconds(value: float | timedelta) -> float:
    """Accept seconds or a timedelta everywhere a duration is asked for."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to retry a failing step.

    Attempt ``n`` (1-based) that fails is followed, if allowed, by a delay of
    ``initial_interval * backoff ** (n - 1)`` seconds, capped at ``max_interval`` (or at
    ``initial_interval`` if that is longer) and spread
    by ``±jitter`` (a fraction) so that many runs failing together do not retry in lockstep.
    ``non_retryable`` exception types fail at once; ``retry_if`` may veto any retry.

    A delay of two seconds or more is a durable timer: the run leaves the worker's memory
    and any worker resumes it when the delay is over.
    """

    max_attempts: int = 3
    initial_interval: float | timedelta = 1.0
    backoff: float = 2.0
    max_interval: float | timedelta = 60.0
    jitter: float = 0.1
    non_retryable: tuple[type[BaseException], ...] = ()
    retry_if: Callable[[BaseException], bool] | None = None

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"Retry.max_attempts must be at least 1, got {self.max_attempts}")
        if self.backoff < 1:
            raise ValueError(f"Retry.backoff must be at least 1, got {self.backoff}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"Retry.jitter is a fraction from 0 to 1, got {self.jitter}")

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        """Whether a failure of attempt ``attempt`` (1-based) is followed by another."""
        if attempt >= self.max_attempts or isinstance(exc, self.non_retryable):
            return False
        return self.retry_if is None or self.retry_if(exc)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        base = seconds(self.initial_interval) * self.backoff ** (attempt - 1)
        # The cap limits growth; it never shortens the first interval the user asked for.
        base = min(base, max(seconds(self.max_interval), seconds(self.initial_interval)))
        if self.jitter:
            base *= 1 + _random.uniform(-self.jitter, self.jitter)
        return max(base, 0.0)


NO_RETRY = Retry(max_attempts=1)
