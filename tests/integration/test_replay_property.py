"""Property: a run interrupted at any point and resumed by another worker ends with the same
result and the same journal as a run that was never interrupted.

The shapes mix steps, durable sleeps, child runs, ``gather``, ``asyncio.TaskGroup`` and
``asyncio.wait_for`` around them, and signals sent by a step of the run while the run
waits for them beside it (the wait must end while the step is in flight).
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import legato
from legato.store import open_store
from legato.worker.services import current_store
from tests.helpers import in_ci, running_worker

# -- random workflow shapes ------------------------------------------------------------
leaf = st.one_of(
    st.builds(lambda v: {"op": "step", "v": v}, st.integers(0, 99)),
    st.just({"op": "sleep"}),
    st.builds(lambda n: {"op": "signal", "name": f"s{n}"}, st.integers(0, 5)),
)
programs = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"op": "seq", "items": xs}, st.lists(inner, min_size=1, max_size=4)),
        st.builds(
            lambda xs: {"op": "gather", "items": xs}, st.lists(inner, min_size=1, max_size=4)
        ),
        st.builds(lambda p: {"op": "child", "prog": p}, inner),
        st.builds(
            lambda xs: {"op": "taskgroup", "items": xs}, st.lists(inner, min_size=1, max_size=3)
        ),
        st.builds(lambda p: {"op": "wait_for", "prog": p}, inner),
    ),
    max_leaves=12,
)


class Trigger:
    """Kills the worker when the N-th step execution starts."""

    countdown = -1
    worker: legato.Worker | None = None


@legato.step
async def value_step(v: int) -> int:
    Trigger.countdown -= 1
    if Trigger.countdown == 0 and Trigger.worker is not None:
        Trigger.worker.kill()
    await asyncio.sleep(0.001 * (v % 3))  # uneven timings, so parallel steps interleave
    return v


@legato.step
async def send_to_self(name: str) -> int:
    """Signal this step's own run, then keep running a little: the run's wait for the
    signal, beside this step, must end while the step is still in flight."""
    Trigger.countdown -= 1
    if Trigger.countdown == 0 and Trigger.worker is not None:
        Trigger.worker.kill()
    store = current_store.get()
    assert store is not None
    await legato.AsyncClient(store).signal(legato.step_info().run_id, name, len(name))
    await asyncio.sleep(0.002)
    return 0


@legato.workflow
async def interpret(prog: dict[str, Any]) -> int:
    return await evaluate(prog)


async def evaluate(prog: dict[str, Any]) -> int:
    op = prog["op"]
    if op == "step":
        return await value_step(prog["v"])
    if op == "sleep":
        await legato.sleep(0.001)
        return 0
    if op == "seq":
        total = 0
        for item in prog["items"]:
            total += await evaluate(item)
        return total
    if op == "gather":
        return sum(await asyncio.gather(*(evaluate(x) for x in prog["items"])))
    if op == "taskgroup":
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(evaluate(x)) for x in prog["items"]]
        return sum(t.result() for t in tasks)
    if op == "wait_for":
        return await asyncio.wait_for(evaluate(prog["prog"]), 3600)
    if op == "signal":
        got, sent = await asyncio.gather(
            legato.wait_for_signal(prog["name"]), send_to_self(prog["name"])
        )
        return int(got) + sent
    return await legato.child(interpret, prog["prog"])


def count_steps(prog: dict[str, Any]) -> int:
    if prog["op"] in ("step", "signal"):
        return 1
    if prog["op"] == "sleep":
        return 0
    if prog["op"] in ("child", "wait_for"):
        return count_steps(prog["prog"])
    return sum(count_steps(x) for x in prog["items"])


async def snapshot(client: legato.AsyncClient) -> dict[str, list[tuple[str, str, str, str, Any]]]:
    """Every run's journal without timings: (seq, kind, name, status, output)."""
    runs = await client.list(limit=10_000)
    return {
        r.run_id: [
            (e.seq, e.kind.value, e.name, e.status.value, e.output)
            for e in sorted(await client.journal(r.run_id), key=lambda e: e.seq)
        ]
        for r in runs
    }


async def execute(db: str, prog: dict[str, Any], kill_at: int) -> tuple[Any, Any]:
    store = open_store(db)
    await store.open()
    try:
        if kill_at > 0:
            Trigger.countdown = kill_at
            first = legato.Worker(store)
            Trigger.worker = first
            serving = asyncio.create_task(first.run())
            await legato.AsyncClient(store).start(interpret, prog, run_id="root")
            await asyncio.wait_for(serving, 30)  # ends when the trigger kills it
            Trigger.worker = None
            assert first.killed
            root = await legato.AsyncClient(store).get("root")
            assert not root.status.is_terminal  # interrupted mid-way, for real
            await store.expire_leases_of([first.worker_id])
        else:
            Trigger.countdown = -1
        async with running_worker(store) as (_, client):
            await client.start(interpret, prog, run_id="root")
            result = await client.result("root", timeout=30)
            return result, await snapshot(client)
    finally:
        await store.close()


@pytest.mark.slow
@settings(
    max_examples=100,
    deadline=None,
    derandomize=in_ci(),  # reproducible in CI; new random shapes on every local run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(prog=programs, data=st.data())
def test_interrupted_and_resumed_equals_uninterrupted(prog: dict[str, Any], data: Any) -> None:
    steps = count_steps(prog)
    kill_at = data.draw(st.integers(1, steps)) if steps else 0
    with tempfile.TemporaryDirectory() as folder:
        clean = asyncio.run(execute(f"sqlite:///{Path(folder) / 'a.db'}", prog, 0))
        resumed = asyncio.run(execute(f"sqlite:///{Path(folder) / 'b.db'}", prog, kill_at))
    assert resumed[0] == clean[0]
    assert resumed[1] == clean[1]
