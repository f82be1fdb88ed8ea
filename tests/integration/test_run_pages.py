"""Paging through runs: exact under concurrent inserts, filtered by time, with a total."""

from __future__ import annotations

import asyncio
import random

import pytest

import legato
from legato.records import NewRun
from legato.store import open_store
from tests.helpers import run

T0 = 1_800_000_000.0


def test_paging_10000_runs_while_1000_are_inserted_has_no_duplicates_or_gaps(
    db_url: str,
) -> None:
    async def body() -> None:
        store = open_store(db_url)
        await store.open()
        try:
            # Many runs share a creation time: the id orders them within it.
            await asyncio.gather(
                *(
                    store.create_run(NewRun(f"old-{i:05d}", "wf", None), T0 + i // 7)
                    for i in range(10_000)
                )
            )
            client = legato.AsyncClient(store)
            first = await client.page(limit=250)
            assert first.total == 10_000

            rng = random.Random(7)

            async def insert() -> None:
                # Adversarial times: before, inside and after the range being paged.
                for i in range(1_000):
                    at = T0 + rng.uniform(-100, 10_000 / 7 + 100)
                    await store.create_run(NewRun(f"new-{i:04d}", "wf", None), at)

            inserting = asyncio.ensure_future(insert())
            seen = [r.run_id for r in first.runs]
            cursor = first.next_cursor
            pages = 1
            while cursor is not None:
                page = await client.page(limit=250, cursor=cursor)
                seen.extend(r.run_id for r in page.runs)
                cursor = page.next_cursor
                pages += 1
                await asyncio.sleep(0)  # let the inserts interleave with the pages
            await inserting
            assert pages > 40
            assert len(seen) == len(set(seen))  # no duplicates
            old = [s for s in seen if s.startswith("old-")]
            assert sorted(old) == [f"old-{i:05d}" for i in range(10_000)]  # no gaps
            assert (await client.page(limit=1)).total == 11_000
        finally:
            await store.close()

    run(body)


def test_pages_filter_by_creation_time_and_count_what_they_cover(db_url: str) -> None:
    async def body() -> None:
        store = open_store(db_url)
        await store.open()
        try:
            for i in range(10):
                await store.create_run(NewRun(f"r{i}", "a" if i % 2 else "b", None), T0 + i)
            client = legato.AsyncClient(store)
            page = await client.page(created_after=T0 + 3, created_before=T0 + 8, limit=2)
            assert [r.run_id for r in page.runs] == ["r7", "r6"] and page.total == 5
            rest = await client.page(
                created_after=T0 + 3, created_before=T0 + 8, limit=10, cursor=page.next_cursor
            )
            assert [r.run_id for r in rest.runs] == ["r5", "r4", "r3"]
            assert rest.next_cursor is None
            only_a = await client.page(workflow="a")
            assert only_a.total == 5 and {r.workflow for r in only_a.runs} == {"a"}
            with pytest.raises(legato.InvalidInput, match="bad page cursor"):
                await client.page(cursor="not-a-cursor")
            with pytest.raises(legato.InvalidInput, match="limit"):
                await client.page(limit=0)
        finally:
            await store.close()

    run(body)
