"""Workers: heartbeats that renew leases, the list of workers, dead workers' runs."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from ..records import RunControl, WorkerRecord
from .ops import WORK, Op, count, rows
from .plumbing import Plumbing
from .rows import worker_from_row, worker_params


def heartbeat(
    worker: WorkerRecord, lease_until: float, run_ids: Sequence[str]
) -> Op[dict[str, RunControl]]:
    yield count("upsert_worker", **worker_params(worker))
    yield count("renew_leases", owner=worker.worker_id, lease_until=lease_until, ids=list(run_ids))
    owned = yield rows("owned_runs", owner=worker.worker_id)
    return {
        r["run_id"]: RunControl(r["lease_epoch"], bool(r["cancel_requested"]), bool(r["paused"]))
        for r in owned
    }


def deregister_worker(worker_id: str) -> Op[None]:
    yield count("delete_worker", worker_id=worker_id)


PROBE_ID = "legato:write-probe"
"""The worker id of the row a write probe inserts and deletes in one transaction."""

PROBE_BYTES = 65536
"""What a write probe writes: enough pages that a database which cannot grow says so."""


def probe_write(now: float) -> Op[None]:
    """Insert a row and delete it in one transaction: nothing changes, but the database
    had to accept (and make durable) a write of ``PROBE_BYTES``."""
    yield count("probe_insert", worker_id=PROBE_ID, now=now, padding="x" * PROBE_BYTES)
    yield count("delete_worker", worker_id=PROBE_ID)


def list_workers() -> Op[list[WorkerRecord]]:
    return [worker_from_row(r) for r in (yield rows("list_workers"))]


def expire_leases_of(worker_ids: Sequence[str]) -> Op[int]:
    total = 0
    for worker_id in worker_ids:
        total += yield count("expire_leases", owner=worker_id)
        yield count("delete_worker", worker_id=worker_id)
    if total:
        yield WORK
    return total


class Workers(Plumbing):
    async def heartbeat(
        self, worker: WorkerRecord, lease_until: float, run_ids: Sequence[str]
    ) -> dict[str, RunControl]:
        """Renew the leases of ``run_ids`` (the runs in the worker's memory, no others),
        and record the worker as alive with what it can run (its app, queues, workflows
        and capabilities, as ``worker`` gives them).

        Returns what the worker holds, by run id: lease epoch, cancel request, pause.
        """
        result: dict[str, RunControl] = await self._write(
            partial(heartbeat, worker, lease_until, run_ids)
        )
        return result

    async def deregister_worker(self, worker_id: str) -> None:
        """Remove a worker that stopped cleanly."""
        await self._write(partial(deregister_worker, worker_id))

    async def probe_write(self, now: float) -> None:
        """Raise :class:`~legato.errors.Unavailable` unless the database accepts a write
        (a full disk, a read-only file or server): what ``legato health`` checks."""
        await self._write(partial(probe_write, now))

    async def list_workers(self) -> list[WorkerRecord]:
        """Known workers, newest heartbeat first."""
        result: list[WorkerRecord] = await self._read(list_workers)
        return result

    async def expire_leases_of(self, worker_ids: Sequence[str]) -> int:
        """Make the runs of dead workers claimable now; returns how many runs."""
        return int(await self._write(partial(expire_leases_of, worker_ids)))
