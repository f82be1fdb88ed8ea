"""Every action on Legato's data, in one place: the path every front door uses.

:class:`AsyncClient` is the implementation. :class:`legato.Client` (in ``sync.py``) is the
same API for plain (synchronous) code: it runs an :class:`AsyncClient` on a private event
loop in a background thread and waits for each call. One implementation, two faces; a
unit test holds their methods and signatures equal.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..apps import DEFAULT_APP, App
from ..errors import InvalidInput, RunFailed, RunNotFound
from ..payload import dumps, loads
from ..records import (
    BlueprintRecord,
    EntryStatus,
    JournalEntry,
    NewRun,
    Pause,
    PauseScope,
    QueueLimits,
    RunRecord,
    RunStatus,
    WorkerRecord,
)
from ..runtime.definitions import Workflow
from ..runtime.retry import seconds
from ..store import DEFAULT_URL, Store, open_store

if TYPE_CHECKING:
    from ..blueprint.document import Blueprint
from .checks import SignalSent, awaited_signals, check_signal, reuse_problem, servers
from .feed import RunFeed, settled
from .redrive import reset_plan, retry_plan

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first; pass ``next_cursor`` back for the next page.

    ``total`` counts every run the filters cover (not only this page); ``next_cursor`` is
    None on the last page. Pages are keyset pages: runs started while a reader pages
    through never make it see a run twice or skip one.
    """

    runs: list[RunRecord]
    next_cursor: str | None
    total: int


def encode_cursor(run: RunRecord) -> str:
    """An opaque cursor after ``run`` (its creation time and id)."""
    raw = json.dumps([run.created_at, run.run_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        return float(created_at), str(run_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(
            f"bad page cursor {cursor!r}: pass the next_cursor of a previous page"
        ) from exc


def _since(value: float | datetime | None) -> float | None:
    return value.timestamp() if isinstance(value, datetime) else value


@dataclass(frozen=True)
class RunHandle:
    """A started run: its id and whether this call created it (False: it already existed)."""

    run_id: str
    workflow: str
    created: bool


class AsyncClient:
    """The one path for every action on Legato's data.

    Starting, signalling, cancelling, pausing and re-driving runs; publishing blueprints
    and events; reading runs, journals, queues and workers; upgrading the schema. Python
    callers, the ``legato`` command, the HTTP API and the steps of blueprint runs (an
    ``emit`` publishes through its worker's client) all act through these methods, never
    on the store directly; a unit test holds the CLI to that.

    That makes this class the place for what must hold for every action, whoever asks:
    an audit record or a permission check belongs here, in the method, so that every
    front door gets it at once.

    ``db`` is a database URL (the client owns the store it opens) or a store someone else
    opened and closes (a worker's, in tests and embedded workers). ``app`` (default:
    :data:`legato.apps.DEFAULT_APP`) is where :meth:`start` looks up a workflow given by
    name, and what a :class:`Worker` given this client serves unless told otherwise.
    """

    def __init__(self, db: str | Store = DEFAULT_URL, *, app: App | None = None) -> None:
        self.app: App = app or DEFAULT_APP
        self.store: Store = open_store(db) if isinstance(db, str) else db
        self._owns_store = isinstance(db, str)
        self._opened = not self._owns_store
        self._feed = RunFeed(self.store)

    async def __aenter__(self) -> AsyncClient:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the store (a client given a URL owns its store)."""
        if not self._opened:
            await self.store.open()
            self._opened = True

    async def close(self) -> None:
        """Close the store if this client opened it (a borrowed store stays open)."""
        self._feed.close()
        if self._owns_store and self._opened:
            await self.store.close()
            self._opened = False

    async def start(
        self,
        workflow: Workflow[P, Any] | str,
        *args: Any,
        run_id: str | None = None,
        input_json: Any = None,
        queue: str | None = None,
        priority: int = 0,
        concurrency_key: str | None = None,
        timeout: float | timedelta | None = None,
        attach: bool = False,
        **kwargs: Any,
    ) -> RunHandle:
        """Start a run of ``workflow`` with these arguments; idempotent by ``run_id``.

        A run id names one run. Starting again under an id that is taken by a run of the
        same workflow with the same input returns that run (``created=False``): a retried
        start is safe. Another workflow under the id, or other input, raises
        :class:`legato.Conflict` (HTTP 409) and changes nothing; ``attach=True`` returns
        the run of this workflow that is there whatever its input (to follow or resume
        it), still refusing another workflow's.

        ``workflow`` is a :class:`Workflow` (arguments are checked against its signature)
        or a name: one the client's app registers stands for that workflow; any other
        is started as given, unchecked. ``input_json`` gives the input as JSON instead (CLI/HTTP):
        the value of the only parameter, or an object/array for several.

        Flow control: ``queue`` (default: the workflow's), ``priority`` (higher first among
        waiting starts), ``concurrency_key`` (for a queue's per-key limit, e.g. a customer).
        ``timeout`` (default: the workflow's) bounds the whole run; see ``@legato.workflow``.
        """
        await self.open()
        default_queue = "default"
        run_timeout = seconds(timeout) if timeout is not None else None
        if isinstance(workflow, str):
            workflow = self.app.registered().get(workflow, workflow)
        if isinstance(workflow, Workflow):
            name, version, default_queue = workflow.name, workflow.version, workflow.queue
            if run_timeout is None:
                run_timeout = workflow.timeout
            if input_json is not None:
                encoded = workflow.input_from_json(input_json)
            else:
                encoded = workflow.encode_args(args, kwargs)
        else:
            name, version = workflow, None
            encoded = [[input_json], {}] if input_json is not None else [list(args), kwargs]
        new = NewRun(
            run_id=run_id or uuid.uuid4().hex,
            workflow=name,
            input=dumps(encoded, f"input of workflow {name!r}"),
            version=version,
            queue=queue or default_queue,
            priority=priority,
            concurrency_key=concurrency_key,
            deadline_at=time.time() + run_timeout if run_timeout is not None else None,
            signals=workflow.signal_spec() if isinstance(workflow, Workflow) else None,
        )
        return await self._create(new, workflow, attach)

    async def _create(self, new: NewRun, definition: Any, attach: bool) -> RunHandle:
        """Create the run, or return the one its id names if that is the same start."""
        record, created = await self.store.create_run(new, time.time())
        if not created:
            problem = reuse_problem(record, new.workflow, new.input, definition, attach)
            if problem is not None:
                raise problem
        return RunHandle(record.run_id, record.workflow, created)

    async def start_blueprint(
        self,
        blueprint: Blueprint | str,
        input: Any = None,
        *,
        run_id: str | None = None,
        queue: str = "default",
        priority: int = 0,
        concurrency_key: str | None = None,
        attach: bool = False,
    ) -> RunHandle:
        """Start a run of a blueprint; idempotent by ``run_id`` as :meth:`start` is (the
        same blueprint, document and input under a taken id return that run; anything
        else raises :class:`legato.Conflict` unless ``attach=True``).

        ``blueprint`` is a published reference (``name``, ``name:1.2.0``,
        ``namespace/name:1.2.0``; the highest version when none is given) or a
        :class:`~legato.blueprint.Blueprint` loaded from a file (a draft run, nothing is
        published). The run keeps the document it started with, whatever is published
        later.
        """
        from ..blueprint.document import Blueprint, parse_trusted
        from ..blueprint.runs import new_blueprint_run

        await self.open()
        if isinstance(blueprint, str):
            record = await self.get_blueprint(blueprint)
            blueprint = parse_trusted(record.source, f"{record.name}.yaml")
        elif not isinstance(blueprint, Blueprint):
            raise InvalidInput(
                "start_blueprint takes a Blueprint (legato.blueprint.load_blueprint) or a "
                f"published name such as 'orders/invoice:1.0.0', not {type(blueprint).__name__}"
            )
        new = new_blueprint_run(blueprint, input, run_id, queue, priority, concurrency_key)
        return await self._create(new, None, attach)

    # -- events --------------------------------------------------------------------------
    async def emit_event(
        self,
        type: str,
        source: str,
        data: Any = None,
        **attributes: Any,
    ) -> dict[str, Any]:
        """Publish a CloudEvent on Legato's bus; blueprint runs ``listen``-ing for it wake.

        Returns the envelope (with its generated ``id`` and ``time``). The same as
        :meth:`publish_event` with these attributes.
        """
        return await self.publish_event(
            {"type": type, "source": source, "data": data, **attributes}
        )

    async def publish_event(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Publish a CloudEvent given as its attributes; return its envelope.

        For events that arrive whole (a blueprint's ``emit``, a webhook's body): ``type``
        and ``source`` are required (a ``BlueprintFault`` of type validation says which is
        missing), ``id`` and ``time`` are filled in when absent. Every listening run is
        nudged to read it.
        """
        from ..blueprint.events import publish

        await self.open()
        return await publish(self.store, attributes)

    # -- blueprints ----------------------------------------------------------------------
    async def publish_blueprint(self, blueprint: Blueprint) -> tuple[BlueprintRecord, bool]:
        """Publish a blueprint under its namespace, name and version.

        ``blueprint`` comes from :func:`legato.blueprint.load_blueprint` (or
        ``load_blueprint_file``), which validated it; pass them ``functions=`` and
        ``kinds=`` to check the names it calls. Returns the stored record and whether
        this call published it: False when the same content was already published,
        which is fine, so a deploy can publish on every run. Other content under a
        version already published raises Conflict: runs pinned to that version
        must keep meaning what they meant.
        """
        from ..blueprint.document import Blueprint
        from ..blueprint.registry import publish_loaded

        if not isinstance(blueprint, Blueprint):
            raise InvalidInput(
                "publish_blueprint takes a Blueprint (legato.blueprint.load_blueprint), "
                f"not {type(blueprint).__name__}"
            )
        await self.open()
        # Asked first because the store's publish returns the record either way; two
        # publishers of the same content at the same moment may both hear True.
        before = await self.store.get_blueprint(
            blueprint.namespace, blueprint.name, blueprint.version
        )
        record = await publish_loaded(self.store, blueprint)
        return record, before is None

    async def get_blueprint(self, ref: str) -> BlueprintRecord:
        """The published blueprint ``ref`` names: ``name``, ``name:1.2.0`` or
        ``namespace/name:1.2.0`` (the highest version when none is given).

        BlueprintNotFound (listing the versions there are) when nothing matches;
        InvalidInput when a name without namespace is published in several.
        """
        from ..blueprint.registry import resolve

        await self.open()
        return await resolve(self.store, ref)

    async def list_blueprints(self, namespace: str | None = None) -> list[BlueprintRecord]:
        """Every published version, by namespace, name and semantic version."""
        await self.open()
        return await self.store.list_blueprints(namespace)

    # -- queues and runs -----------------------------------------------------------------
    async def set_queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        key_concurrency: int | None = None,
        rate_limit: int | None = None,
        rate_period: float | timedelta = 1.0,
    ) -> QueueLimits:
        """Set a queue's limits for every worker: at most ``concurrency`` runs executing,
        ``key_concurrency`` per concurrency key, ``rate_limit`` starts per ``rate_period``.
        None lifts a limit."""
        await self.open()
        for label, value in (
            ("concurrency", concurrency),
            ("key_concurrency", key_concurrency),
            ("rate_limit", rate_limit),
        ):
            if value is not None and value < 1:
                raise InvalidInput(f"queue {name!r}: {label} must be at least 1")
        limits = QueueLimits(
            name,
            concurrency,
            key_concurrency,
            rate_limit,
            seconds(rate_period) if rate_limit is not None else None,
        )
        await self.store.set_queue(limits)
        return limits

    async def queues(self) -> list[QueueLimits]:
        """Queues that have limits."""
        await self.open()
        return await self.store.list_queues()

    async def signal(self, run_id: str, name: str, data: Any = None) -> SignalSent:
        """Send signal ``name`` with ``data``; buffered until the run waits for it.

        Refused with :class:`legato.InvalidInput` when the run's workflow declares its
        signals (``@legato.workflow(signals=...)``) and not this one; the data is checked
        against the type the run waits for (``wait_for_signal(name, type=...)``) or its
        workflow declares (:class:`legato.PayloadError`). A name the run does not wait
        for, of a workflow that declares nothing, is kept for a later wait: the result's
        ``note`` says so, naming what the run waits for (a mistyped name shows there).
        RunNotFound, RunEnded as the run stands.
        """
        run = await self.get(run_id)
        awaited: dict[str, dict[str, Any]] = {}
        if not run.status.is_terminal:  # an ended run: the store says RunEnded
            awaited = awaited_signals(run, await self.store.get_journal(run_id))
            data = check_signal(run, name, data, awaited)
        payload = dumps(data, f"data of signal {name!r}")
        await self.store.send_signal(run_id, name, payload, time.time())
        declared = run.declared_signals()
        return SignalSent(
            run_id,
            name,
            waiting=name in awaited,
            awaited=tuple(sorted(awaited)),
            declared=tuple(sorted(declared)) if declared is not None else None,
        )

    async def cancel(self, run_id: str) -> RunRecord:
        """Ask a run to cancel: it sees ``asyncio.CancelledError`` at its next command."""
        await self.open()
        return await self.store.request_cancel(run_id, time.time())

    async def pause(
        self, run_id: str | None = None, *, workflow: str | None = None, queue: str | None = None
    ) -> None:
        """Pause one run, every run of a workflow, or a queue (give exactly one).

        Paused runs are not scheduled; one a worker is executing finishes its in-flight
        steps first (the worker learns within a heartbeat, a third of its lease).
        """
        await self.open()
        scope, name = _pause_target(run_id, workflow, queue)
        await self.store.set_paused(scope, name, True, time.time())

    async def resume(
        self, run_id: str | None = None, *, workflow: str | None = None, queue: str | None = None
    ) -> None:
        """Undo :meth:`pause`: the runs are scheduled again where they stopped."""
        await self.open()
        scope, name = _pause_target(run_id, workflow, queue)
        await self.store.set_paused(scope, name, False, time.time())

    async def pauses(self) -> list[Pause]:
        """Paused workflows and queues."""
        await self.open()
        return await self.store.list_pauses()

    async def still_running(
        self, run_id: str | None = None, *, workflow: str | None = None, queue: str | None = None
    ) -> int:
        """How many runs of the target a worker still executes (0: a pause took hold)."""
        await self.open()
        now = time.time()

        def held(r: RunRecord) -> bool:  # a dead worker's expired lease executes nothing
            return r.lease_expires_at is not None and r.lease_expires_at > now

        if run_id is not None:
            record = await self.get(run_id)
            return int(record.status is RunStatus.RUNNING and held(record))
        running = await self.store.list_runs(RunStatus.RUNNING, workflow, 100_000, queue)
        return sum(1 for r in running if held(r))

    async def retry(self, run_id: str) -> RunRecord:
        """Run a failed (or parked) run again from its failed step, with today's code.

        Every step that completed is replayed from the journal, not run again; the step
        whose failure ended the run runs again, and so does what the run did because of
        that failure (an ``except`` block that alerted and re-raised; see
        ``legato.client.redrive.after_failure``). A run whose compensations ran is refused.
        """
        run = await self.get(run_id)
        drop = retry_plan(run, await self.store.get_journal(run_id))
        return await self.store.redrive_run(run_id, run.status, drop, time.time())

    async def reset(self, run_id: str, to_step: str | int) -> RunRecord:
        """Run an ended run again from position ``to_step`` (see ``legato runs show``)."""
        run = await self.get(run_id)
        drop = reset_plan(run, await self.store.get_journal(run_id), str(to_step))
        return await self.store.redrive_run(run_id, run.status, drop, time.time())

    async def get(self, run_id: str) -> RunRecord:
        """The run as stored now (RunNotFound if there is none)."""
        await self.open()
        record = await self.store.get_run(run_id)
        if record is None:
            raise RunNotFound(run_id)
        return record

    async def journal(self, run_id: str) -> list[JournalEntry]:
        """The run's journal: its steps, waits and children, with timings and payloads."""
        await self.get(run_id)
        return await self.store.get_journal(run_id)

    # -- operations ----------------------------------------------------------------------
    async def check_writable(self) -> None:
        """Raise :class:`legato.Unavailable` unless the database accepts a write now.

        A row of 64 KB is inserted and deleted in one transaction (nothing changes), so
        a full disk, a read-only file or a read-only server fails it; ``legato health``
        runs it.
        """
        await self.open()
        await self.store.probe_write(time.time())

    async def list_workers(self) -> list[WorkerRecord]:
        """Workers with a heartbeat in the database (newest first), and the runs each holds."""
        await self.open()
        return await self.store.list_workers()

    async def servers_for(self, run_id: str) -> list[WorkerRecord]:
        """The live workers that would claim this run: a heartbeat within
        :data:`legato.records.DEAD_AFTER_SECONDS`, serving the run's queue, running its
        workflow (or its family) and having every capability it requires
        (:meth:`WorkerRecord.can_serve`). Empty: no worker alive now will execute it.
        """
        run = await self.get(run_id)
        return servers(run, await self.store.list_workers(), time.time())

    async def unserved(self, run_id: str) -> list[RunRecord]:
        """The runs this run's progress depends on that no live worker would claim.

        The run itself (unless it has ended or is parked) and the unfinished child runs
        and routed steps it waits for, depth first, each one no worker alive now serves
        (see :meth:`servers_for`). Empty: every one of them has a worker. For a caller that
        waits on a run to say at once why it may wait for ever, and what to start
        (:func:`legato.client.checks.start_worker_hint`).
        """
        await self.open()
        workers = await self.store.list_workers()
        now = time.time()
        found: list[RunRecord] = []
        seen: set[str] = set()
        todo = [run_id]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            run = await self.store.get_run(current)
            if run is None:
                if current == run_id:
                    raise RunNotFound(run_id)
                continue
            if settled(run.status):
                continue
            if not servers(run, workers, now):
                found.append(run)
            for entry in await self.store.get_journal(current):
                if entry.child_run_id and entry.status in (
                    EntryStatus.WAITING,
                    EntryStatus.RUNNING,
                ):
                    todo.append(entry.child_run_id)
        return found

    async def upgrade_schema(self) -> list[int]:
        """Create or upgrade Legato's tables; return the migration versions applied.

        PostgreSQL needs this once per release (SQLite upgrades itself when opened); it
        is safe to run on several hosts at once. It does not open the client first,
        since opening fails on a schema that is not current: call it on a client that is
        not open (``AsyncClient(url).upgrade_schema()``, not inside ``async with``).
        """
        return await self.store.upgrade()

    # Last: below here ``list`` names the method, not the builtin, in annotations.
    async def list(
        self,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        queue: str | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first."""
        await self.open()
        state = RunStatus(status) if status is not None else None
        return await self.store.list_runs(state, workflow, limit, queue)

    async def page(
        self,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
    ) -> RunPage:
        """A page of runs, newest first, with the total the filters cover.

        Times are epoch seconds or aware datetimes (``created_after`` inclusive,
        ``created_before`` exclusive). Read the next page with ``cursor=page.next_cursor``.
        """
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, not {limit}")
        await self.open()
        state = RunStatus(status) if status is not None else None
        after = decode_cursor(cursor) if cursor else None
        since, until = _since(created_after), _since(created_before)
        runs = await self.store.list_runs(state, workflow, limit, queue, after, since, until)
        total = await self.store.count_runs(state, workflow, queue, since, until)
        next_cursor = encode_cursor(runs[-1]) if len(runs) == limit else None
        return RunPage(runs, next_cursor, total)

    async def wait(
        self, run_id: str, timeout: float | timedelta | None = None, poll: float = 30.0
    ) -> RunRecord:
        """Wait until the run has ended (completed, failed, cancelled) or is parked.

        It waits on the store's change feed (see ``legato.client.feed``): the run is read
        when the wait starts and again when it may have changed, not every few
        milliseconds. ``poll`` is only a safety net: the longest time between two reads.
        """
        await self.open()
        deadline = None if timeout is None else time.monotonic() + seconds(timeout)
        async with self._feed.watching(run_id) as changed:
            while True:
                changed.clear()  # before the read: a change during it wakes the next wait
                record = await self.get(run_id)
                if settled(record.status):
                    return record
                wait = poll
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        raise TimeoutError(
                            f"run {run_id!r} is still {record.status} after the timeout"
                        )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), wait)

    async def result(
        self,
        run_id: str,
        timeout: float | timedelta | None = None,
        workflow: Workflow[Any, R] | None = None,
    ) -> Any:
        """Wait for the run and return its result (typed by ``workflow`` if given).

        Raises :class:`legato.RunFailed` if it failed, was cancelled or was parked.
        """
        record = await self.wait(run_id, timeout)
        if record.status is not RunStatus.COMPLETED:
            raise RunFailed(run_id, record.status.value, record.error_dict())
        annotation = workflow.return_annotation if workflow is not None else Any
        return loads(record.output, annotation, f"result of run {run_id}")


def decode_output(record: RunRecord) -> Any:
    """The run's stored result as plain JSON (None if it has none)."""
    return json.loads(record.output) if record.output else None


def _pause_target(
    run_id: str | None, workflow: str | None, queue: str | None
) -> tuple[PauseScope, str]:
    given = [
        (scope, name)
        for scope, name in (
            (PauseScope.RUN, run_id),
            (PauseScope.WORKFLOW, workflow),
            (PauseScope.QUEUE, queue),
        )
        if name
    ]
    if len(given) != 1:
        raise InvalidInput("pause/resume one thing: a run id, a workflow or a queue")
    return given[0]
