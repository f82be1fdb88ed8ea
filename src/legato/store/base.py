"""The lease: a worker's claim on a run, carried by every write made on the run's behalf."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lease:
    """A worker's claim on a run: writes carry it and are refused when it is stale."""

    run_id: str
    owner: str
    epoch: int
