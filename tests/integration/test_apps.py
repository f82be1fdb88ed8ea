"""Two apps, one database: each worker claims only what its app can run.

App A and app B share a database. A's worker is started first and left alone with a run
only B can execute (a blueprint calling B's function, a code workflow only B registers,
a family only B serves) and with a control run of its own started *after* it, at a lower
priority: once A has completed the control run, it has looked at the pending runs, and
the run it cannot execute must still be untouched (pending, no owner, lease epoch 0, an
empty journal). Then B starts and completes it. No timing decides anything.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from typing import Any

import legato
from legato.blueprint import load_blueprint
from legato.records import WorkerRecord
from tests.helpers import legato_cli, run, running_worker, status_is, wait_until

A = legato.App("tests.apps-a")
B = legato.App("tests.apps-b")

HEAD = "document: {{dsl: '1.0.3', namespace: tests, name: {name}, version: '{version}'}}\n"

NEEDS_B = """
do:
  - double:
      call: apps.double
      with: {n: '${ .n }'}
"""
PLAIN = """
do:
  - ok:
      set: {ok: true}
"""


@B.function("apps.double")
def double(n: int) -> int:
    return n * 2


@B.workflow(name="apps.b_only")
async def b_only(n: int) -> int:
    return n * 3


@A.workflow(name="apps.a_control")
async def a_control() -> str:
    return "a was here"


async def _report(kind: str) -> str:
    return f"{kind} report"


@functools.cache
def _report_workflow(name: str) -> legato.Workflow[Any, Any]:
    return legato.Workflow(_report, name=name)


B.family("report:", _report_workflow)


def blueprint(name: str, body: str, version: str = "1.0.0") -> Any:
    return load_blueprint(HEAD.format(name=name, version=version) + body, f"{name}.yaml")


async def left_alone(
    client: legato.AsyncClient, worker: legato.Worker, run_id: str, control_id: str
) -> None:
    """Once ``worker`` completed the control run (started after ``run_id``, at a lower
    priority), it has passed over ``run_id``: it must not have claimed or failed it."""
    await wait_until(status_is(client, control_id, legato.RunStatus.COMPLETED))
    record = await client.get(run_id)
    assert record.status is legato.RunStatus.PENDING, record.error
    assert (record.owner, record.lease_epoch, record.recoveries) == (None, 0, 0)
    assert await client.journal(run_id) == []
    assert worker.runs_claimed == 1  # the control run only


def test_a_blueprint_calling_a_function_of_app_b_is_run_by_b_only(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=A) as (worker_a, client):
            needy = await client.start_blueprint(blueprint("needs-b", NEEDS_B), {"n": 21})
            assert (await client.get(needy.run_id)).requires == ("apps.double",)
            control = await client.start_blueprint(blueprint("plain", PLAIN), priority=-1)
            await left_alone(client, worker_a, needy.run_id, control.run_id)
            shown = await asyncio.to_thread(legato_cli, db_url, "runs", "show", needy.run_id)
            assert "requires of its worker's app: apps.double" in shown.stdout, shown.stderr

            async with running_worker(db_url, app=B) as (worker_b, _):
                record = await client.wait(needy.run_id, timeout=20)
                assert record.status is legato.RunStatus.COMPLETED, record.error
                assert json.loads(record.output or "null") == 42
                assert record.lease_epoch == 1  # claimed once: by B
                assert worker_b.runs_claimed == 1
            assert worker_a.runs_claimed == 1

    run(body)


def test_a_code_workflow_only_app_b_registers_is_run_by_b_only(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=A) as (worker_a, client):
            assert "apps.b_only" not in worker_a.known_workflows()
            needy = await client.start(b_only, 5)
            control = await client.start(a_control, priority=-1)
            await left_alone(client, worker_a, needy.run_id, control.run_id)

            async with running_worker(db_url, app=B) as (worker_b, _):
                assert await client.result(needy.run_id, timeout=20, workflow=b_only) == 15
                assert (await client.get(needy.run_id)).lease_epoch == 1
                assert worker_b.runs_claimed == 1
            assert worker_a.runs_claimed == 1

    run(body)


def test_a_family_an_app_registers_is_claimed_and_run_by_its_workers(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=A) as (worker_a, client):
            assert A.family_prefixes() == ["blueprint:"]
            report = await client.start("report:daily", "daily")
            control = await client.start(a_control, priority=-1)
            await left_alone(client, worker_a, report.run_id, control.run_id)

            async with running_worker(db_url, app=B) as (worker_b, _):
                assert B.family_prefixes() == ["blueprint:", "report:"]
                assert await client.result(report.run_id, timeout=20) == "daily report"
                assert worker_b.runs_claimed == 1

    run(body)


def test_a_child_blueprint_requires_what_its_own_document_calls(db_url: str) -> None:
    """A's run starts a published child that calls B's function: the child waits for B
    (A never takes it), and the parent completes with the child's result."""
    parent = blueprint(
        "parent-of-b",
        """
do:
  - sub:
      run:
        workflow: {namespace: tests, name: needs-b, version: '2.0.0', input: {n: 4}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url, app=A) as (_worker, client):
            await client.publish_blueprint(blueprint("needs-b", NEEDS_B, "2.0.0"))
            started = await client.start_blueprint(parent)
            assert (await client.get(started.run_id)).requires == ()

            async def child_id() -> str | None:
                found = [e.child_run_id for e in await client.journal(started.run_id)]
                return next((c for c in found if c), None)

            await wait_until(child_id)
            child = await client.get(await child_id() or "")
            assert child.requires == ("apps.double",)
            control = await client.start(a_control, priority=-1)
            await wait_until(status_is(client, control.run_id, legato.RunStatus.COMPLETED))
            waiting = await client.get(child.run_id)
            assert waiting.status is legato.RunStatus.PENDING
            assert (waiting.owner, waiting.lease_epoch) == (None, 0)

            async with running_worker(db_url, app=B):
                record = await client.wait(started.run_id, timeout=20)
                assert record.status is legato.RunStatus.COMPLETED, record.error
                assert json.loads(record.output or "null") == 8
                assert (await client.get(child.run_id)).lease_epoch == 1

    run(body)


def test_workers_list_shows_what_each_worker_runs_and_whether_it_is_alive(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=B, queues=["default", "gpu"]) as (worker, client):

            async def listed() -> bool:
                return worker.worker_id in [w.worker_id for w in await client.list_workers()]

            await wait_until(listed)
            # A worker whose process died on another host without deregistering: its last
            # heartbeat is ten minutes old.
            now = time.time()
            ghost = WorkerRecord("ghost:1:dead", "ghost", 1, now - 900, now - 600, app="old")
            await worker.store.heartbeat(ghost, now - 585, [])
            listing = await asyncio.to_thread(legato_cli, db_url, "workers", "list", "--json")
            table = await asyncio.to_thread(legato_cli, db_url, "workers", "list")
            lenient = await asyncio.to_thread(
                legato_cli, db_url, "workers", "list", "--json", "--dead-after", "3600"
            )
        assert listing.returncode == 0, listing.stderr
        shown = {w["worker_id"]: w for w in map(json.loads, listing.stdout.splitlines())}
        mine = shown[worker.worker_id]
        assert mine["alive"] is True and mine["app"] == "tests.apps-b"
        assert mine["queues"] == ["default", "gpu"]
        assert mine["capabilities"] == ["apps.double"]
        assert {"apps.b_only", "blueprint:*", "report:*"} <= set(mine["workflows"])
        assert "apps.a_control" not in mine["workflows"]
        assert shown["ghost:1:dead"]["alive"] is False
        assert shown["ghost:1:dead"]["capabilities"] == []
        assert table.returncode == 0, table.stderr
        assert "alive" in table.stdout and "dead" in table.stdout
        assert "tests.apps-b" in table.stdout
        revived = {w["worker_id"]: w["alive"] for w in map(json.loads, lenient.stdout.splitlines())}
        assert revived["ghost:1:dead"] is True

    run(body)
