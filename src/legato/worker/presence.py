"""A worker's presence in the database: its heartbeat, registration, and the runs of
workers that died on its host.

The heartbeat is how everyone else knows the worker is alive (``legato workers list``,
the lease of every run it holds) and how the worker learns what happened to its runs
while it held them: a lease another worker took, a cancel request, a pause.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from ..errors import StoreError
from ..records import WorkerRecord

if TYPE_CHECKING:
    from ..apps import App
    from ..outages import Outage
    from ..store import Store
    from .execution import RunExecution

log = logging.getLogger("legato.worker.worker")

IDLE_HEARTBEAT_SECONDS = 30.0
"""How often a worker holding no run says it is alive: with no lease to renew, beating
every few seconds would only write. A worker holding runs beats every third of its lease
(and at least this often, however long the lease)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Presence:
    """The heartbeat half of :class:`legato.Worker` (which holds these attributes)."""

    worker_id: str
    host: str
    pid: int
    started_at: float
    lease_seconds: float
    poll_interval: float
    queues: list[str]
    app: App
    store: Store
    outage: Outage
    executions: dict[str, RunExecution]
    killed: bool
    _stopping: bool
    _last_beat: float

    def known_workflows(self) -> list[str]:  # the Worker's, published in each heartbeat
        raise NotImplementedError

    async def _heartbeat_loop(self) -> None:
        # Capped so that every live worker beats within DEAD_AFTER_SECONDS, whatever its lease.
        interval = min(self.lease_seconds / 3, IDLE_HEARTBEAT_SECONDS)
        while True:
            await asyncio.sleep(interval)
            if self.killed:
                return
            idle = not self.executions
            if idle and time.time() - self._last_beat < IDLE_HEARTBEAT_SECONDS:
                continue
            try:
                await self._heartbeat_once()
                self.outage.ok()
            except Exception as exc:
                self.outage.failed(exc, f"the heartbeat is retried every {interval:g} s")

    async def _register(self) -> None:
        """Announce this worker and free the runs of dead local workers, riding out outages.

        The store opened, so the address is right; a database that restarts while the worker
        starts up is waited for rather than fatal, as it is once the worker serves.
        """
        delay = self.poll_interval
        while not self._stopping:
            try:
                await self._heartbeat_once()
                await self._reap_dead_workers()
                self.outage.ok()
                return
            except StoreError as exc:
                self.outage.failed(exc, f"registering again within {delay:g}-5 s")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _heartbeat_once(self) -> None:
        now = time.time()
        self._last_beat = now
        record = WorkerRecord(
            self.worker_id,
            self.host,
            self.pid,
            self.started_at,
            now,
            app=self.app.name,
            queues=tuple(self.queues),
            # Families show as their prefix and "*": every name they serve.
            workflows=(*self.known_workflows(), *(f"{p}*" for p in self.app.family_prefixes())),
            capabilities=tuple(self.app.capabilities()),
        )
        # Judge only executions that existed before the heartbeat read the database: one
        # claimed meanwhile is not in its answer and must not be taken for lost.
        before = dict(self.executions)
        owned = await self.store.heartbeat(record, now + self.lease_seconds, list(before))
        for run_id, execution in before.items():
            if self.executions.get(run_id) is not execution:
                continue  # it ended meanwhile
            held = owned.get(run_id)
            if held is None or held.epoch != execution.lease.epoch:
                execution.lose()
                continue
            if held.cancel_requested and not execution.ctx.cancel_requested:
                execution.request_stop()
            if held.paused and not execution.stopping:
                log.info("run %s paused: stopping after its in-flight steps", run_id)
                execution.stop()  # released; paused runs are not claimed until resumed

    async def _reap_dead_workers(self) -> None:
        """Free the runs of workers that died on this host (their pid is gone) at once.

        Workers on other hosts are taken over when their leases expire.
        """
        dead = [
            w.worker_id
            for w in await self.store.list_workers()
            if w.worker_id != self.worker_id
            and w.host == self.host
            and (w.pid != self.pid and not _pid_alive(w.pid))
        ]
        if dead:
            count = await self.store.expire_leases_of(dead)
            log.info(
                "worker %s: %d run(s) of dead worker(s) %s on this host freed for take-over",
                self.worker_id,
                count,
                ", ".join(dead),
                extra={"worker": self.worker_id},
            )
