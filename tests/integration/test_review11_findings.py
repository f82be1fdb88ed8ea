"""Bugs found reviewing issue 11's signal checks. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import legato
from tests.helpers import run, running_worker, wait_until

BEFORE = legato.App("review11-before")  # the code a run started with
AFTER = legato.App("review11-after")  # the code deployed since: one more signal


@BEFORE.workflow(name="review11_order", signals=["approve"])
async def order_before() -> Any:
    return await legato.wait_for_signal("approve")


@AFTER.workflow(name="review11_order", signals=["approve", "reject"])
async def order_after() -> Any:
    return await legato.wait_for_signal("reject")


def test_a_signal_the_run_waits_for_now_is_taken_though_its_recorded_declaration_lacks_it(
    db_url: str,
) -> None:
    # The run recorded the declaration of the code it started with; the code deployed
    # since declares and waits for "reject". The client refused "reject" ("takes no
    # signal 'reject' ... it waits for 'reject' now"): the run waited for ever.
    async def body() -> None:
        async with legato.AsyncClient(db_url, app=BEFORE) as starter:
            await starter.start(order_before, run_id="o1")
        async with running_worker(db_url, app=AFTER) as (_, client):

            async def waiting() -> bool:
                return any(
                    e.name == "reject" and e.status is legato.EntryStatus.WAITING
                    for e in await client.journal("o1")
                )

            await wait_until(waiting, what="the run waits for 'reject'")
            sent = await client.signal("o1", "reject", "too dear")
            assert sent.waiting
            assert await client.result("o1", timeout=30) == "too dear"

    run(body)
