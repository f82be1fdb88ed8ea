"""Who can serve a run: the live workers whose heartbeat says they claim it (queue,
workflow or family, capabilities), and the runs a run waits on that no live worker
serves (itself, its children, its routed steps). SQLite and PostgreSQL."""

from __future__ import annotations

import time

import legato
from legato.blueprint import load_blueprint
from legato.client.checks import start_worker_hint
from legato.records import DEAD_AFTER_SECONDS, RunStatus, WorkerRecord
from legato.store import open_store
from tests.helpers import run, running_worker, wait_until

APP = legato.App("run-servers")


@APP.workflow(queue="payments")
async def pay(amount: int) -> int:
    return amount


@APP.step(queue="gpu")
def render(n: int) -> int:
    return n * 2


@APP.workflow
async def uses_gpu(n: int) -> int:
    return await render(n)


def test_servers_are_the_live_workers_that_would_claim_the_run(db_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url, app=APP) as client:
            await client.start(pay, 1, run_id="p1")
            assert await client.servers_for("p1") == []
            assert [r.run_id for r in await client.unserved("p1")] == ["p1"]
        # A worker of this app on the default queue only does not serve "payments".
        async with running_worker(db_url, app=APP) as (worker, client):
            await wait_until(lambda: _registered(client, worker.worker_id))
            assert await client.servers_for("p1") == []
        async with running_worker(db_url, app=APP, queues=["payments"]) as (worker, client):
            assert await client.result("p1", timeout=30) == 1
            await client.start(pay, 2, run_id="p2")
            await client.pause("p2")  # held back, so it stays unfinished to ask about
            servers = await client.servers_for("p2")
            assert [w.worker_id for w in servers] == [worker.worker_id]
            assert await client.unserved("p2") == []
            assert await client.unserved("p1") == []  # ended: nothing to serve

    run(body)


def test_a_routed_step_on_a_queue_nobody_serves_is_named(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=APP) as (_, client):
            await client.start(uses_gpu, 3, run_id="g1")

            async def only_the_step_is_stuck() -> bool:
                # Until the worker's first heartbeat, g1 itself has no live server either.
                return [r.workflow for r in await client.unserved("g1")] == ["step:render"]

            await wait_until(only_the_step_is_stuck)
            (step_run,) = await client.unserved("g1")
            assert step_run.workflow == "step:render" and step_run.queue == "gpu"
            assert start_worker_hint(step_run) == "legato worker --app FILE.py --queue gpu"
            assert (await client.get("g1")).status is not RunStatus.COMPLETED
        async with running_worker(db_url, app=APP, queues=["default", "gpu"]) as (_, client):
            assert await client.result("g1", timeout=30) == 6
            assert await client.unserved("g1") == []

    run(body)


def test_a_blueprint_needing_a_function_no_live_worker_has_is_unserved(db_url: str) -> None:
    text = (
        "document: {dsl: '1.0.3', namespace: tests, name: needs, version: '1.0.0'}\n"
        "do:\n  - work:\n      call: acme.work\n"
    )
    document = load_blueprint(text, "needs.yaml")

    async def body() -> None:
        async with running_worker(db_url, app=APP) as (worker, client):
            await wait_until(lambda: _registered(client, worker.worker_id))
            handle = await client.start_blueprint(document, run_id="b1")
            assert await client.servers_for(handle.run_id) == []
            (stuck,) = await client.unserved("b1")
            assert stuck.requires == ("acme.work",)
            assert "registers acme.work" in start_worker_hint(stuck)

    run(body)


def test_a_dead_workers_record_serves_nothing(db_url: str) -> None:
    async def body() -> None:
        store = open_store(db_url)
        await store.open()
        try:
            client = legato.AsyncClient(store, app=APP)
            await client.start(pay, 1, run_id="p1")
            old = time.time() - DEAD_AFTER_SECONDS - 5
            ghost = WorkerRecord(
                "ghost", "elsewhere", 1, old, old, app="x", queues=("payments",), workflows=("pay",)
            )
            await store.heartbeat(ghost, old, [])
            assert [w.worker_id for w in await client.list_workers()] == ["ghost"]
            assert await client.servers_for("p1") == []
            fresh = WorkerRecord(
                "fresh",
                "here",
                2,
                time.time(),
                time.time(),
                app="x",
                queues=("payments",),
                workflows=("pay",),
            )
            await store.heartbeat(fresh, time.time() + 15, [])
            assert [w.worker_id for w in await client.servers_for("p1")] == ["fresh"]
        finally:
            await store.close()

    run(body)


def test_an_app_names_the_queues_of_what_a_module_defines() -> None:
    assert APP.queues() == ["default", "gpu", "payments"]
    assert APP.queues(module=__name__) == ["default", "gpu", "payments"]
    assert APP.queues(module="elsewhere") == []


async def _registered(client: legato.AsyncClient, worker_id: str) -> bool:
    return any(w.worker_id == worker_id for w in await client.list_workers())
