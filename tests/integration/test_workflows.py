"""End-to-end behaviour of workflows on a real database: steps, gather, waits, children."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pydantic
import pytest

import legato
from legato import EntryKind, EntryStatus, RunStatus
from tests.helpers import run, running_worker, wait_until

calls: list[str] = []


@legato.step
async def double(x: int) -> int:
    calls.append(f"double:{x}")
    return x * 2


@legato.step
def sync_add(a: int, b: int) -> int:  # sync steps run in the worker's thread pool
    calls.append(f"add:{a}+{b}")
    return a + b


@legato.step
async def slow_echo(x: int, delay: float) -> int:
    await asyncio.sleep(delay)
    calls.append(f"echo:{x}")
    return x


@legato.workflow
async def child_square(x: int) -> int:
    return await sync_add(x * x, 0)


@legato.workflow
async def everything(n: int) -> dict[str, object]:
    a = await double(n)
    b = await sync_add(a, 1)
    parts = await asyncio.gather(*(double(i) for i in range(4)))
    await legato.sleep(0.05)
    signal = await legato.wait_for_signal("go", timeout=30)
    squared = await legato.child(child_square, b)
    return {"a": a, "b": b, "parts": parts, "signal": signal, "squared": squared}


def test_sequence_gather_sleep_signal_child(db_url: str) -> None:
    async def body() -> None:
        calls.clear()
        async with running_worker(db_url) as (_, client):
            handle = await client.start(everything, 5)
            await wait_until(
                lambda: client.get(handle.run_id), timeout=10
            )  # the run exists at once
            await client.signal(handle.run_id, "go", {"ok": True})
            result = await client.result(handle.run_id, timeout=20)
            assert result == {
                "a": 10,
                "b": 11,
                "parts": [0, 2, 4, 6],
                "signal": {"ok": True},
                "squared": 121,
            }
            journal = await client.journal(handle.run_id)
            kinds = [(e.seq, e.kind, e.name) for e in journal]
            assert (("1", EntryKind.STEP, "double")) in kinds
            assert ("3.1", EntryKind.STEP, "double") in kinds  # first gather member
            assert ("6.1", EntryKind.STEP, "double") in kinds  # last gather member
            assert any(k == EntryKind.SLEEP for _, k, _ in kinds)
            child = next(e for e in journal if e.kind is EntryKind.CHILD)
            assert child.status is EntryStatus.COMPLETED
            assert child.child_run_id == f"{handle.run_id}:{child.seq}"
            child_run = await client.get(child.child_run_id)
            assert child_run.parent_run_id == handle.run_id
            assert child_run.status is RunStatus.COMPLETED
        # Each step ran exactly once although the run was replayed after each wait.
        assert calls.count("double:5") == 1
        assert calls.count("add:10+1") == 1
        assert calls.count("add:121+0") == 1

    run(body)


def test_gather_replays_the_same_however_steps_interleave(db_url: str) -> None:
    @legato.workflow(name="interleave")
    async def interleave() -> list[int]:
        async def branch(i: int) -> int:
            # Later branches finish first; each branch then issues a second step.
            first = await slow_echo(i, 0.05 * (3 - i))
            return await slow_echo(first + 10, 0.0)

        values = await asyncio.gather(*(branch(i) for i in range(3)))
        await legato.sleep(0.01)  # evicts the run; the result below comes from a replay
        return list(values)

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(interleave)
            assert await client.result(handle.run_id, timeout=20) == [10, 11, 12]
            seqs = {e.seq: e.output for e in await client.journal(handle.run_id)}
            assert seqs["1.1"] == "0" and seqs["1.2"] == "10"
            assert seqs["3.1"] == "2" and seqs["3.2"] == "12"

    run(body)


@dataclasses.dataclass
class Order:
    id: str
    cents: int


class Receipt(pydantic.BaseModel):
    order_id: str
    charged: int


@legato.step
async def charge(order: Order) -> Receipt:
    return Receipt(order_id=order.id, charged=order.cents)


@legato.workflow
async def typed(order: Order) -> Receipt:
    receipt = await charge(order)
    assert isinstance(receipt, Receipt)
    await legato.sleep(0.01)
    again = await charge(order)  # replayed results are models too
    assert isinstance(again, Receipt)
    return receipt


def test_dataclass_and_pydantic_payloads(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(typed, Order("o-1", 250))
            result = await client.result(handle.run_id, timeout=20, workflow=typed)
            assert result == Receipt(order_id="o-1", charged=250)

    run(body)


@legato.workflow
async def returns_unserialisable() -> object:
    return object()


def test_unserialisable_result_fails_the_run_with_a_clear_message(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(returns_unserialisable)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.FAILED
            error = record.error_dict()
            assert error is not None
            assert "result of workflow" in error["message"]
            assert "cannot be stored as JSON" in error["message"]

    run(body)


def test_start_is_idempotent_by_run_id(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            first = await client.start(child_square, 3, run_id="order-42")
            second = await client.start(child_square, 3, run_id="order-42")
            assert first.created and not second.created
            with pytest.raises(legato.Conflict, match="other input"):  # not the same start
                await client.start(child_square, 4, run_id="order-42")
            assert await client.result("order-42", timeout=20) == 9
            assert len(await client.list()) == 1

    run(body)


def test_bad_input_is_refused_at_start(db_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url) as client:
            with pytest.raises(legato.PayloadError, match="does not fit"):
                await client.start(typed, input_json={"id": "x"})  # cents missing
            with pytest.raises(legato.PayloadError, match="input does not fit"):
                await client.start(child_square, 1, 2)

    run(body)


@legato.workflow
async def recorded_values() -> list[str]:
    first = [str(legato.now()), str(legato.uuid4()), str(legato.random())]
    await legato.sleep(0.01)
    return first


def test_now_uuid_random_are_recorded(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(recorded_values)
            result = await client.result(handle.run_id, timeout=20)
            journal = {e.kind: e.output for e in await client.journal(handle.run_id)}
            assert f'"{result[1]}"' == journal[EntryKind.UUID]
            assert float(result[2]) == float(journal[EntryKind.RANDOM] or "nan")

    run(body)


def test_sync_client_has_the_same_api(db_url: str) -> None:
    async def serve(stop: asyncio.Event) -> None:
        async with running_worker(db_url):
            await stop.wait()

    async def body() -> None:
        stop = asyncio.Event()
        server = asyncio.create_task(serve(stop))

        def use_sync_client() -> None:
            with legato.Client(db_url) as client:
                handle = client.start(child_square, 7)
                assert client.result(handle.run_id, timeout=20) == 49
                assert client.get(handle.run_id).status is RunStatus.COMPLETED
                assert [r.run_id for r in client.list(status="completed")] == [handle.run_id]
                assert client.journal(handle.run_id)[0].name == "sync_add"

        await asyncio.to_thread(use_sync_client)
        stop.set()
        await server

    run(body)


def test_timedelta_durations_are_accepted() -> None:
    policy = legato.Retry(initial_interval=timedelta(seconds=2), max_interval=timedelta(minutes=1))
    assert policy.delay(1) >= 1.5 and policy.delay(1) <= 2.5
    assert policy.delay(20) <= 66
