"""The worker: claims runnable runs, executes them, keeps their leases alive.

One asyncio loop per worker process. Runs that wait are evicted (see execution.py), so
``concurrency`` bounds the runs *in memory*, not the runs in flight overall: a worker with
concurrency 100 serves any number of sleeping or signal-waiting runs.

Waking without busy polling: a commit in this process that creates work (a new run, a
signal, a finished child) sets an event; timers are slept until exactly when they are due;
work committed by other processes is noticed through SQLite's ``data_version`` (a
shared-memory counter, no disk read) checked every ``poll_interval``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..apps import DEFAULT_APP, App
from ..client import AsyncClient
from ..clock import Clock, SystemClock
from ..errors import StoreError
from ..outages import Outage
from ..records import DEAD_AFTER_SECONDS as DEAD_AFTER_SECONDS  # re-exported (CLI)
from ..runtime.definitions import Workflow
from ..store import DEFAULT_URL, Store, open_store
from .execution import RunExecution
from .presence import IDLE_HEARTBEAT_SECONDS as IDLE_HEARTBEAT_SECONDS
from .presence import Presence

log = logging.getLogger(__name__)

RELOOK_SECONDS = 1.0
"""An idle worker claims at least this often, whatever it has heard."""

# A worker is counted dead after DEAD_AFTER_SECONDS (legato.records), three idle beats.

RESIDENT_POLL_SECONDS = 0.05
"""How often other processes' commits are looked for while a run in memory waits."""


class Worker(Presence):
    """Executes workflow runs from one store.

    ``await worker.run()`` serves until :meth:`stop` (graceful: in-flight steps finish and
    their runs are released to other workers) or cancellation.

    ``max_recoveries`` bounds how often a run is taken over from a worker that died (or
    lost its lease) holding it: a claim that would recover a run for the
    ``max_recoveries + 1``-th time parks it instead of running it, so a run that keeps
    killing its workers (OOM, a segfault, ``os._exit``) stops doing so. ``legato runs
    retry`` resets the count.

    ``evict_after`` is how long a run that waits durably stays in memory before it is
    evicted (0: at once). While it is in memory, its timers, signals, child results and
    cancel requests reach it directly; once evicted, they make it runnable again.

    ``db`` is a database URL (the worker opens and closes its store), a store someone
    else opened, or an open :class:`AsyncClient` whose store the worker shares (an
    embedded worker beside a client, as ``legato run`` does). ``worker.client`` is the
    client over the worker's store: the steps it runs act through it (a blueprint's
    ``emit`` publishes with it), so they take the same path as every other caller.

    ``app`` is what the worker can run (default: the client's app when ``db`` is a
    client, else :data:`legato.apps.DEFAULT_APP`): it claims only runs of that app's
    workflows (plus ``workflows``), and blueprint runs whose functions and task kinds the
    app registers; its code is looked up there. Its heartbeat publishes the app's name,
    queues, workflows and capabilities (``legato workers list``).
    """

    def __init__(
        self,
        db: str | Store | AsyncClient = DEFAULT_URL,
        *,
        workflows: Iterable[Workflow[Any, Any]] = (),
        concurrency: int = 100,
        lease_seconds: float = 15.0,
        poll_interval: float = 0.2,
        step_threads: int = 32,
        clock: Clock | None = None,
        queues: Iterable[str] = ("default",),
        evict_after: float = 0.0,
        max_recoveries: int = 10,
        app: App | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if max_recoveries < 0:
            raise ValueError("max_recoveries must be at least 0")
        if evict_after < 0:
            raise ValueError("evict_after must be 0 (evict at once) or more seconds")
        if isinstance(db, AsyncClient):
            self.client, self.store, self._owns_store = db, db.store, False
            self.app = app or db.app
        else:
            self.store = open_store(db) if isinstance(db, str) else db
            self._owns_store = isinstance(db, str)
            self.app = app or DEFAULT_APP
            # Borrows the store: opens nothing.
            self.client = AsyncClient(self.store, app=self.app)
        self.workflows = {wf.name: wf for wf in workflows}
        self.queues = list(queues)
        if not self.queues:
            raise ValueError("a worker must serve at least one queue")
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.max_recoveries = max_recoveries
        self.poll_interval = poll_interval
        self.evict_after = evict_after
        self.clock: Clock = clock or SystemClock()
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.worker_id = f"{self.host}:{self.pid}:{secrets.token_hex(3)}"
        self.outage = Outage(log, f"worker {self.worker_id}: the database")
        self.started_at = time.time()
        self.pool = ThreadPoolExecutor(step_threads, thread_name_prefix="legato-step")
        self.killed = False
        self.executions: dict[str, RunExecution] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self.runs_claimed = 0
        self._last_claim = 0.0
        self._last_beat = 0.0
        self._touched: set[str] = set()  # runs in memory something arrived for
        self._check_all = False  # another process committed: look at every run in memory
        self._checking = False
        self._ready = asyncio.Event()

    # -- lifecycle -----------------------------------------------------------------------
    async def run(self) -> None:
        """Serve until stopped. Opens (and closes) the store if it was given as a URL."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        if self._owns_store:
            await self.store.open()
        self.store.add_listener(self.wake)
        self.store.add_run_listener(self.touched)
        self.clock.on_jump(self._clock_jumped)
        heartbeat = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._register()
            self._ready.set()
            log.info(
                "worker %s started (host %s, pid %d, concurrency %d, queues %s)",
                self.worker_id,
                self.host,
                self.pid,
                self.concurrency,
                ",".join(self.queues),
                extra={"worker": self.worker_id},
            )
            await self._serve()
        finally:
            # Leases are renewed until the runs are drained: a graceful stop lets steps
            # longer than a lease finish and record their results.
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self._shutdown()

    async def ready(self) -> None:
        """Return once :meth:`run` has registered the worker and is about to claim.

        For callers that start runs and time them: the clock starts after the worker
        serves. It waits for ever if ``run`` is never called or fails first, so race it
        with the ``run`` task.
        """
        await self._ready.wait()

    def wake(self) -> None:
        """Look for work now (thread-safe)."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        try:
            if asyncio.get_running_loop() is loop:
                event.set()
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(event.set)

    def _clock_jumped(self) -> None:
        self.wake()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._timers_jumped)

    def _timers_jumped(self) -> None:
        for execution in list(self.executions.values()):
            execution.clock_jumped()

    def touched(self, run_id: str) -> None:
        """A signal, cancel request or child's end was committed for ``run_id`` (any
        thread): if the run is in this worker's memory, it is woken with it."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            if asyncio.get_running_loop() is loop:
                self._touch(run_id)
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(self._touch, run_id)

    def _touch(self, run_id: str) -> None:
        if run_id in self.executions:
            self._touched.add(run_id)
            self._start_check()

    def _start_check(self) -> None:
        if not self._checking and (self._touched or self._check_all) and self.executions:
            self._checking = True
            task = asyncio.get_running_loop().create_task(self._check_resident())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _check_resident(self) -> None:
        """Look once for what arrived for runs in memory, and hand it to them.

        One read for all of them: cancel requests, buffered signals of runs that wait for
        signals, and the ends of the children they wait on. Repeated while more arrives.
        """
        try:
            while (self._touched or self._check_all) and not self._stopping:
                if self._check_all:
                    ids = list(self.executions)
                else:
                    ids = [r for r in self._touched if r in self.executions]
                self._touched.clear()
                self._check_all = False
                signal_runs: list[str] = []
                child_waits: list[tuple[str, str]] = []
                for run_id in ids:
                    signals, children = self.executions[run_id].wanted()
                    if signals:
                        signal_runs.append(run_id)
                    child_waits.extend(children)
                if not ids:
                    continue
                try:
                    found = await self.store.resident_wakeups(ids, signal_runs, child_waits)
                except StoreError as exc:
                    self.outage.failed(exc, "looking for wake-ups again")
                    await asyncio.sleep(self.poll_interval)
                    self._check_all = True
                    continue
                for wakeup in found:
                    execution = self.executions.get(wakeup.run_id)
                    if execution is not None:
                        execution.wake(wakeup)
        finally:
            self._checking = False

    def stop(self) -> None:
        """Graceful stop: claim nothing more, let in-flight steps finish, release runs."""
        if not self._stopping:
            log.info(
                "worker %s stopping: %d run(s) in memory finish their steps in flight, "
                "then are released",
                self.worker_id,
                len(self.executions),
                extra={"worker": self.worker_id},
            )
        self._stopping = True
        for execution in list(self.executions.values()):
            execution.stop()
        self.wake()

    def kill(self) -> None:
        """Stop at once as if the process died (for tests): nothing more is written."""
        self.killed = True
        self._stopping = True
        for execution in list(self.executions.values()):
            execution.lose()
        self.wake()

    async def _shutdown(self) -> None:
        # Stores of one database in one process share their listeners: leave them.
        self.store.remove_listener(self.wake)
        self.store.remove_listener(self.touched)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if not self.killed:
            with contextlib.suppress(Exception):
                await self.store.deregister_worker(self.worker_id)
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self._owns_store:
            await self.store.close()
        log.info("worker %s stopped", self.worker_id, extra={"worker": self.worker_id})

    # -- the loop ------------------------------------------------------------------------
    async def _serve(self) -> None:
        assert self._wake is not None
        look = True
        while not self._stopping:
            before = self.runs_claimed
            try:
                look = await self._serve_once(look)
                if self.runs_claimed > before:  # a claim that took runs: a write worked
                    self.outage.ok()  # (an empty claim may pass on a disk that is full)
            except Exception as exc:
                self.outage.failed(exc, f"claiming again every {self.poll_interval:g} s")
                await asyncio.sleep(self.poll_interval)
                look = True

    async def _serve_once(self, look: bool) -> bool:
        """Claim if asked, wait for a reason to look again; return whether to claim next."""
        assert self._wake is not None
        # Clear before looking, never after: a wake-up that arrives while we claim stays
        # set, so the wait below returns at once instead of losing it.
        self._wake.clear()
        if look:
            await self._claim()
        timeout = await self._idle_timeout()
        wait = timeout
        if any(e.ctx.waits for e in self.executions.values()):
            # A run in memory waits: what another process sends it is seen within this.
            wait = min(timeout, RESIDENT_POLL_SECONDS)
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
        if self._stopping:
            return False
        changed = await self.store.data_changed()
        if changed and self.executions:
            # Another process may have signalled or cancelled a run held here: PostgreSQL
            # says which run it was (touched), SQLite only that something changed.
            self._check_all = True
            self._start_check()
        if (
            self._wake.is_set()
            or (timeout < self.poll_interval and wait >= timeout)  # a timer or lease is due
            or changed
        ):
            return True
        # A queue's rate window may have moved on with nobody committing anything: look
        # again now and then even when nothing seems to have changed. A read asks first
        # whether anything is runnable at all, so an idle worker takes no write lock.
        if time.monotonic() - self._last_claim < RELOOK_SECONDS:
            return False
        self._last_claim = time.monotonic()
        return await self.store.any_runnable(
            self.clock.now(),
            time.time(),
            self.known_workflows(),
            self.queues,
            self.app.family_prefixes(),
            self.app.capabilities(),
        )

    async def _idle_timeout(self) -> float:
        if len(self.executions) >= self.concurrency:
            return self.poll_interval
        timer, lease = await self.store.next_wake_at(
            self.known_workflows(),
            self.queues,
            self.app.family_prefixes(),
            self.app.capabilities(),
        )
        distance = self.poll_interval
        if timer is not None:  # timers follow the workflow clock
            distance = min(distance, timer - self.clock.now())
        if lease is not None:  # leases follow real time
            distance = min(distance, lease - time.time())
        return max(0.0, distance)

    async def _claim(self) -> None:
        self._last_claim = time.monotonic()
        while not self._stopping:
            free = self.concurrency - len(self.executions)
            if free <= 0:
                return
            claimed = await self.store.claim_runs(
                self.worker_id,
                free,
                self.clock.now(),
                time.time(),
                self.lease_seconds,
                self.known_workflows(),
                self.queues,
                self.app.family_prefixes(),
                self.app.capabilities(),
            )
            for item in claimed:
                stale = self.executions.get(item.run.run_id)
                if stale is not None:  # our own lease expired (a long stall): that copy stops
                    stale.lose()
                execution = RunExecution(self, item)
                self.executions[item.run.run_id] = execution
                task = asyncio.get_running_loop().create_task(execution.execute())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            self.runs_claimed += len(claimed)
            if len(claimed) < free:
                return

    def known_workflows(self) -> list[str]:
        """Names of the workflows this worker can run: given ones and its app's."""
        return sorted({*self.workflows, *self.app.registered()})

    def lookup(self, name: str) -> Workflow[Any, Any] | None:
        """The code of workflow ``name`` on this worker (given, or its app's), or None."""
        return self.workflows.get(name) or self.app.lookup(name)

    def forget(self, execution: RunExecution) -> None:
        """An execution ended: free its slot, and look for more work if slots were full.

        When slots were free, nothing runnable was left unclaimed for lack of room: new
        work announces itself (a commit that makes a run runnable wakes the workers).
        """
        if self.executions.get(execution.run_id) is execution:
            del self.executions[execution.run_id]
            if len(self.executions) + 1 >= self.concurrency and not self._stopping:
                self.wake()
