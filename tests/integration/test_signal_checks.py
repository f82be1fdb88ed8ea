"""Signals are checked when sent: a name a declaring workflow does not take is refused,
a payload is checked against the type the run waits for (or its workflow declares), and
a name nothing waits for is accepted with a note naming what the run waits for. Signals
sent before the run reaches its wait stay buffered, under gather, TaskGroup and
asyncio.wait_for too; the payload is validated again on receipt. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest

import legato
from tests.helpers import run, running_worker, status_is, wait_until

APP = legato.App("signal-checks")


class Approval(pydantic.BaseModel):
    by: str
    amount: int


@APP.workflow(signals={"approve": Approval, "note": str})
async def declared() -> str:
    approval = await legato.wait_for_signal("approve")
    assert isinstance(approval, Approval)  # the declared type, without repeating it
    return f"{approval.by}:{approval.amount}"


@APP.workflow
async def typed_wait() -> str:
    approval = await legato.wait_for_signal("approve", type=Approval)
    return f"{type(approval).__name__} {approval.by}:{approval.amount}"


@APP.workflow
async def untyped() -> Any:
    return await legato.wait_for_signal("go")


@APP.workflow(signals={"a": int, "b": Approval, "c": list[int]})
async def racing() -> list[Any]:
    pair = await asyncio.gather(legato.wait_for_signal("a"), legato.wait_for_signal("b"))
    async with asyncio.TaskGroup() as group:
        third = group.create_task(legato.wait_for_signal("c"))
    last = await asyncio.wait_for(legato.wait_for_signal("a"), 3600)
    return [pair[0], pair[1].amount, third.result(), last]


@APP.workflow(signals=["approve"])
async def waits_for_undeclared() -> Any:
    return await legato.wait_for_signal("other")


async def waiting_for(client: legato.AsyncClient, run_id: str, name: str) -> None:
    async def check() -> bool:
        return any(
            e.name == name and e.status is legato.EntryStatus.WAITING
            for e in await client.journal(run_id)
        )

    await wait_until(check)


def test_a_name_the_workflow_does_not_declare_is_refused_before_any_worker(db_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url, app=APP) as client:
            await client.start(declared, run_id="d1")
            # No worker has run it: the run's record knows what its workflow declares.
            with pytest.raises(legato.InvalidInput) as refused:
                await client.signal("d1", "aprove", {"by": "ann", "amount": 1})
            assert "takes no signal 'aprove'" in str(refused.value)
            assert "declares 'approve', 'note'" in str(refused.value)
            with pytest.raises(legato.PayloadError, match="amount"):
                await client.signal("d1", "approve", {"by": "ann"})
            with pytest.raises(legato.PayloadError):
                await client.signal("d1", "note", 3)
            # The right name, sent before the run waits: buffered, and received typed.
            sent = await client.signal("d1", "approve", Approval(by="ann", amount=5))
            assert sent.declared == ("approve", "note") and not sent.waiting
            assert sent.note is None
        async with running_worker(db_url, app=APP) as (_, worker_client):
            assert await worker_client.result("d1", timeout=30) == "ann:5"

    run(body)


def test_the_type_a_run_waits_for_is_checked_at_send_and_on_receipt(db_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url, app=APP) as client:
            await client.start(typed_wait, run_id="t1")
            await client.start(typed_wait, run_id="t2")
            # Sent before the wait, to a workflow that declares nothing: it cannot be
            # checked then, so it is buffered (with a note), and the wait refuses it.
            early = await client.signal("t2", "approve", {"by": "bob"})
            assert early.note is not None and early.awaited == ()
        async with running_worker(db_url, app=APP) as (_, client):
            await waiting_for(client, "t1", "approve")
            with pytest.raises(legato.PayloadError, match="amount"):
                await client.signal("t1", "approve", {"by": "ann", "amount": "lots"})
            assert (await client.get("t1")).status is not legato.RunStatus.COMPLETED
            sent = await client.signal("t1", "approve", {"by": "ann", "amount": 7})
            assert sent.waiting and sent.note is None
            assert await client.result("t1", timeout=30) == "Approval ann:7"

            with pytest.raises(legato.RunFailed) as failed:
                await client.result("t2", timeout=30)
            error = failed.value.error or {}
            assert error.get("type", "").endswith("PayloadError")
            assert "amount" in error["message"]

    run(body)


def test_an_undeclared_name_nothing_waits_for_is_kept_with_a_note(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=APP) as (_, client):
            await client.start(untyped, run_id="u1")
            await waiting_for(client, "u1", "go")
            sent = await client.signal("u1", "og", 1)
            assert not sent.waiting and sent.awaited == ("go",) and sent.declared is None
            assert sent.note is not None
            assert "does not wait for signal 'og'" in sent.note and "'go'" in sent.note
            assert (await client.signal("u1", "go", 2)).note is None
            assert await client.result("u1", timeout=30) == 2

    run(body)


def test_declared_signals_sent_before_their_waits_reach_gather_taskgroup_and_wait_for(
    db_url: str,
) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url, app=APP) as client:
            await client.start(racing, run_id="r1")
            await client.signal("r1", "b", {"by": "ann", "amount": 2})  # before any wait
            await client.signal("r1", "a", 1)
            with pytest.raises(legato.PayloadError):
                await client.signal("r1", "c", ["x"])
        async with running_worker(db_url, app=APP) as (_, client):
            await waiting_for(client, "r1", "c")  # gather ended: both buffered were taken
            with pytest.raises(legato.PayloadError):
                await client.signal("r1", "c", "not a list")
            await client.signal("r1", "c", [1, 2])
            await waiting_for(client, "r1", "a")
            with pytest.raises(legato.PayloadError):
                await client.signal("r1", "a", "one")
            await client.signal("r1", "a", 4)
            assert await client.result("r1", timeout=30) == [1, 2, [1, 2], 4]

    run(body)


def test_a_declaring_workflow_that_waits_for_another_name_fails_saying_so(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=APP) as (_, client):
            await client.start(waits_for_undeclared, run_id="w1")
            with pytest.raises(legato.RunFailed) as failed:
                await client.result("w1", timeout=30)
            error = failed.value.error or {}
            assert error.get("type", "").endswith("ConfigurationError")
            assert "does not declare" in error["message"]

    run(body)


def test_signals_to_an_ended_run_are_still_refused_as_ended(db_url: str) -> None:
    async def body() -> None:
        async with running_worker(db_url, app=APP) as (_, client):
            await client.start(untyped, run_id="e1")
            await waiting_for(client, "e1", "go")
            await client.signal("e1", "go", None)
            await wait_until(status_is(client, "e1", legato.RunStatus.COMPLETED))
            with pytest.raises(legato.RunEnded):
                await client.signal("e1", "go", None)

    run(body)


class Opaque:
    """A type pydantic cannot describe as JSON."""


def test_declaring_a_type_without_a_json_schema_is_a_configuration_error() -> None:
    with pytest.raises(legato.ConfigurationError, match="signal 'x'"):
        legato.App("bad").workflow(signals={"x": Opaque})(untyped.fn)
    with pytest.raises(legato.ConfigurationError, match="not one string"):
        legato.App("bad2").workflow(signals="approve")(untyped.fn)
