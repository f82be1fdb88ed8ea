"""The synchronous face of :class:`~legato.client.client.AsyncClient`.

Each method runs the async client's method of the same name on a private event loop in a
background thread and waits for it: no logic of its own, so there is still one path for
every action. ``tests/unit/test_client_parity.py`` fails when a method or a parameter
exists on one face and not on the other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..apps import App
from ..records import (
    BlueprintRecord,
    JournalEntry,
    Pause,
    QueueLimits,
    RunRecord,
    RunStatus,
    WorkerRecord,
)
from ..runtime.definitions import Workflow
from ..store import DEFAULT_URL, Store
from .checks import SignalSent
from .client import AsyncClient, RunHandle, RunPage

if TYPE_CHECKING:
    from ..blueprint.document import Blueprint

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


class Client:
    """Synchronous face of :class:`AsyncClient` (same methods, same semantics).

    Like the async client, it is the one path for every action (see there): what must
    hold for each action belongs in :class:`AsyncClient`, which this only calls.
    """

    def __init__(self, db: str | Store = DEFAULT_URL, *, app: App | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="legato-client", daemon=True
        )
        self._thread.start()
        self._async = AsyncClient(db, app=app)
        self.app = self._async.app

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """See :meth:`AsyncClient.open` (every method opens the store when it needs to)."""
        self._call(self._async.open())

    def close(self) -> None:
        """See :meth:`AsyncClient.close`; also stops this client's background thread."""
        if self._loop.is_running():
            self._call(self._async.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def start(
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
        """See :meth:`AsyncClient.start`."""
        return self._call(
            self._async.start(
                workflow,
                *args,
                run_id=run_id,
                input_json=input_json,
                queue=queue,
                priority=priority,
                concurrency_key=concurrency_key,
                timeout=timeout,
                attach=attach,
                **kwargs,
            )
        )

    def start_blueprint(
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
        """See :meth:`AsyncClient.start_blueprint`."""
        return self._call(
            self._async.start_blueprint(
                blueprint,
                input,
                run_id=run_id,
                queue=queue,
                priority=priority,
                concurrency_key=concurrency_key,
                attach=attach,
            )
        )

    # -- events --------------------------------------------------------------------------
    def emit_event(
        self,
        type: str,
        source: str,
        data: Any = None,
        **attributes: Any,
    ) -> dict[str, Any]:
        """See :meth:`AsyncClient.emit_event`."""
        return self._call(self._async.emit_event(type, source, data, **attributes))

    def publish_event(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """See :meth:`AsyncClient.publish_event`."""
        return self._call(self._async.publish_event(attributes))

    # -- blueprints ----------------------------------------------------------------------
    def publish_blueprint(self, blueprint: Blueprint) -> tuple[BlueprintRecord, bool]:
        """See :meth:`AsyncClient.publish_blueprint`."""
        return self._call(self._async.publish_blueprint(blueprint))

    def get_blueprint(self, ref: str) -> BlueprintRecord:
        """See :meth:`AsyncClient.get_blueprint`."""
        return self._call(self._async.get_blueprint(ref))

    def list_blueprints(self, namespace: str | None = None) -> list[BlueprintRecord]:
        """See :meth:`AsyncClient.list_blueprints`."""
        return self._call(self._async.list_blueprints(namespace))

    # -- queues and runs -----------------------------------------------------------------
    def set_queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        key_concurrency: int | None = None,
        rate_limit: int | None = None,
        rate_period: float | timedelta = 1.0,
    ) -> QueueLimits:
        """See :meth:`AsyncClient.set_queue`."""
        return self._call(
            self._async.set_queue(
                name,
                concurrency=concurrency,
                key_concurrency=key_concurrency,
                rate_limit=rate_limit,
                rate_period=rate_period,
            )
        )

    def queues(self) -> list[QueueLimits]:
        """See :meth:`AsyncClient.queues`."""
        return self._call(self._async.queues())

    def signal(self, run_id: str, name: str, data: Any = None) -> SignalSent:
        """See :meth:`AsyncClient.signal`."""
        return self._call(self._async.signal(run_id, name, data))

    def cancel(self, run_id: str) -> RunRecord:
        """See :meth:`AsyncClient.cancel`."""
        return self._call(self._async.cancel(run_id))

    def pause(
        self, run_id: str | None = None, *, workflow: str | None = None, queue: str | None = None
    ) -> None:
        """See :meth:`AsyncClient.pause`."""
        self._call(self._async.pause(run_id, workflow=workflow, queue=queue))

    def resume(
        self, run_id: str | None = None, *, workflow: str | None = None, queue: str | None = None
    ) -> None:
        """See :meth:`AsyncClient.resume`."""
        self._call(self._async.resume(run_id, workflow=workflow, queue=queue))

    def pauses(self) -> list[Pause]:
        """See :meth:`AsyncClient.pauses`."""
        return self._call(self._async.pauses())

    def still_running(
        self, run_id: str | None = None, *, workflow: str | None = None, queue: str | None = None
    ) -> int:
        """See :meth:`AsyncClient.still_running`."""
        return self._call(self._async.still_running(run_id, workflow=workflow, queue=queue))

    def retry(self, run_id: str) -> RunRecord:
        """See :meth:`AsyncClient.retry`."""
        return self._call(self._async.retry(run_id))

    def reset(self, run_id: str, to_step: str | int) -> RunRecord:
        """See :meth:`AsyncClient.reset`."""
        return self._call(self._async.reset(run_id, to_step))

    def get(self, run_id: str) -> RunRecord:
        """See :meth:`AsyncClient.get`."""
        return self._call(self._async.get(run_id))

    def journal(self, run_id: str) -> list[JournalEntry]:
        """See :meth:`AsyncClient.journal`."""
        return self._call(self._async.journal(run_id))

    # -- operations ----------------------------------------------------------------------
    def check_writable(self) -> None:
        """See :meth:`AsyncClient.check_writable`."""
        self._call(self._async.check_writable())

    def list_workers(self) -> list[WorkerRecord]:
        """See :meth:`AsyncClient.list_workers`."""
        return self._call(self._async.list_workers())

    def servers_for(self, run_id: str) -> list[WorkerRecord]:
        """See :meth:`AsyncClient.servers_for`."""
        return self._call(self._async.servers_for(run_id))

    def unserved(self, run_id: str) -> list[RunRecord]:
        """See :meth:`AsyncClient.unserved`."""
        return self._call(self._async.unserved(run_id))

    def upgrade_schema(self) -> list[int]:
        """See :meth:`AsyncClient.upgrade_schema` (``Client(url).upgrade_schema()``)."""
        return self._call(self._async.upgrade_schema())

    # Last: below here ``list`` names the method, not the builtin, in annotations.
    def list(
        self,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        limit: int = 100,
        queue: str | None = None,
    ) -> list[RunRecord]:
        """See :meth:`AsyncClient.list`."""
        return self._call(self._async.list(status, workflow, limit, queue))

    def page(
        self,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        queue: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        created_after: float | datetime | None = None,
        created_before: float | datetime | None = None,
    ) -> RunPage:
        """See :meth:`AsyncClient.page`."""
        return self._call(
            self._async.page(status, workflow, queue, limit, cursor, created_after, created_before)
        )

    def wait(
        self, run_id: str, timeout: float | timedelta | None = None, poll: float = 30.0
    ) -> RunRecord:
        """See :meth:`AsyncClient.wait`."""
        return self._call(self._async.wait(run_id, timeout, poll))

    def result(
        self,
        run_id: str,
        timeout: float | timedelta | None = None,
        workflow: Workflow[Any, R] | None = None,
    ) -> Any:
        """See :meth:`AsyncClient.result`."""
        return self._call(self._async.result(run_id, timeout, workflow))
