"""The client is the one path for every action: its newer methods, on both faces, and a
blueprint's ``emit`` taking that path from inside a run. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

import legato
from legato.blueprint import load_blueprint
from tests.helpers import run, running_worker, wait_until

HEAD = "document: {{dsl: '1.0.3', namespace: {namespace}, name: {name}, version: '1.0.0'}}\n"


def document(name: str, body: str, namespace: str = "tests") -> Any:
    return load_blueprint(HEAD.format(namespace=namespace, name=name) + body, f"{name}.yaml")


GREETER = "do:\n  - greet:\n      set:\n        message: hello\n"
EMITTER = """\
do:
  - announce:
      emit:
        event:
          with:
            source: /orders
            type: com.example.order.placed
            data: {order: '${ .order }'}
"""


def test_the_sync_client_publishes_reads_and_controls(db_url: str) -> None:
    with legato.Client(db_url) as client:
        client.upgrade_schema()  # SQLite's first open would have done it too
        assert client.upgrade_schema() == []

        greeter = document("greeter", GREETER)
        record, published = client.publish_blueprint(greeter)
        assert published and record.ref == "tests/greeter:1.0.0"
        assert client.publish_blueprint(greeter) == (record, False)  # the same content again
        changed = document("greeter", GREETER.replace("hello", "bye"))
        with pytest.raises(legato.Conflict, match="different content"):
            client.publish_blueprint(changed)
        assert client.get_blueprint("greeter") == record
        assert client.list_blueprints() == [record]
        assert client.list_blueprints("elsewhere") == []
        with pytest.raises(legato.BlueprintNotFound):
            client.get_blueprint("tests/greeter:2.0.0")

        envelope = client.publish_event({"type": "com.example.ping", "source": "/tests"})
        assert envelope["specversion"] == "1.0" and envelope["id"]
        assert client.emit_event("com.example.ping", "/tests", {"n": 1})["data"] == {"n": 1}

        assert client.list_workers() == []
        client.pause(workflow="billing")
        assert [(p.scope, p.name) for p in client.pauses()] == [
            (legato.PauseScope.WORKFLOW, "billing")
        ]
        assert client.still_running(workflow="billing") == 0
        client.resume(workflow="billing")
        assert client.pauses() == []

        handle = client.start("billing", run_id="b1", queue="slow")
        assert [r.run_id for r in client.list(queue="slow")] == [handle.run_id]
        assert client.list(queue="default") == []
        with pytest.raises(TimeoutError):  # no worker serves it: still pending
            client.wait(handle.run_id, timeout=0.05, poll=0.01)


def test_workers_are_listed_through_the_client(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (worker, client):

            async def listed() -> bool:
                return worker.worker_id in [w.worker_id for w in await client.list_workers()]

            await wait_until(listed)

    run(body)


class RecordingClient(legato.AsyncClient):
    """A client that keeps what it was asked to publish (a stand-in for an audit record,
    which is what the one path is for)."""

    def __init__(self, db: str) -> None:
        super().__init__(db)
        self.published: list[dict[str, Any]] = []

    async def publish_event(self, attributes: Mapping[str, Any]) -> dict[str, Any]:
        self.published.append(dict(attributes))
        return await super().publish_event(attributes)


def test_a_blueprint_emit_publishes_through_its_workers_client(db_url: str) -> None:
    async def body() -> None:
        async with RecordingClient(db_url) as client:
            worker = legato.Worker(client)
            assert worker.client is client
            serving = asyncio.create_task(worker.run())
            try:
                handle = await client.start_blueprint(document("emitter", EMITTER), {"order": 7})
                record = await client.wait(handle.run_id, timeout=30)
            finally:
                worker.stop()
                await asyncio.wait_for(serving, 30)
        assert record.status is legato.RunStatus.COMPLETED, record.error
        sent = json.loads(record.output or "null")
        [asked] = client.published
        assert asked["type"] == "com.example.order.placed" and asked["data"] == {"order": 7}
        # The id is the step's idempotency key: an emit repeated after a crash is recognisable.
        assert asked["id"] == sent["id"] and asked["id"].startswith(f"{handle.run_id}:")

    run(body)


def test_a_worker_given_a_url_has_a_client_over_its_own_store(db_url: str) -> None:
    worker = legato.Worker(db_url)
    assert worker.client.store is worker.store
