"""Choosing which runnable runs a worker may claim under its queues' limits.

Backend-independent: a store fetches candidates (highest priority first, then oldest) and
the current load of the limited queues inside its claim transaction, and this module picks
the runs that fit. Claims on a limited queue are serialised by the store (SQLite has one
writer; PostgreSQL locks the queue's row), so two workers never both take the last slot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..records import QueueLimits


@dataclass(frozen=True, slots=True)
class Candidate:
    """A runnable run as the claim sees it."""

    run_id: str
    queue: str
    concurrency_key: str | None
    is_new: bool  # never started: counts against the queue's rate limit


@dataclass
class QueueLoad:
    """What a limited queue is doing now."""

    running: int = 0
    running_by_key: Counter[str | None] | None = None
    recent_starts: int = 0


def candidate_from_row(row: Mapping[str, Any]) -> Candidate:
    return Candidate(row["run_id"], row["queue"], row["concurrency_key"], row["started_at"] is None)


def loads_from_rows(
    limits: Mapping[str, QueueLimits], running: Iterable[Mapping[str, Any]]
) -> dict[str, QueueLoad]:
    """Per limited queue, its running runs (total and per key) from grouped count rows."""
    loads = {name: QueueLoad(running_by_key=Counter()) for name in limits}
    for row in running:
        load = loads[row["queue"]]
        load.running += row["n"]
        assert load.running_by_key is not None
        load.running_by_key[row["concurrency_key"]] += row["n"]
    return loads


def rate_windows(limits: Mapping[str, QueueLimits], now: float) -> dict[str, float]:
    """For each rate-limited queue, the time since when its starts count."""
    return {
        name: now - q.rate_period
        for name, q in limits.items()
        if q.rate_limit is not None and q.rate_period
    }


def scan_size(limit: int, limits: Mapping[str, QueueLimits]) -> int:
    """How many candidates to look at: more when limits may reject some."""
    return limit if not limits else limit * 4 + 32


def choose(
    candidates: Iterable[Candidate],
    limit: int,
    limits: Mapping[str, QueueLimits],
    loads: Mapping[str, QueueLoad],
) -> list[str]:
    """The run ids to claim, in the candidates' order, within every applicable limit."""
    chosen: list[str] = []
    taken: Counter[str] = Counter()
    taken_by_key: Counter[tuple[str, str | None]] = Counter()
    started: Counter[str] = Counter()
    for c in candidates:
        if len(chosen) >= limit:
            break
        q = limits.get(c.queue)
        if q is not None:
            load = loads.get(c.queue, QueueLoad())
            if q.concurrency is not None and load.running + taken[c.queue] >= q.concurrency:
                continue
            if q.key_concurrency is not None and c.concurrency_key is not None:
                by_key = load.running_by_key or Counter()
                now_running = by_key[c.concurrency_key] + taken_by_key[(c.queue, c.concurrency_key)]
                if now_running >= q.key_concurrency:
                    continue
            if c.is_new and q.rate_limit is not None:
                if load.recent_starts + started[c.queue] >= q.rate_limit:
                    continue
                started[c.queue] += 1
        chosen.append(c.run_id)
        taken[c.queue] += 1
        taken_by_key[(c.queue, c.concurrency_key)] += 1
    return chosen
