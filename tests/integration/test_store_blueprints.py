"""The store contract for blueprints and events, on every backend."""

from __future__ import annotations

import asyncio
import json

import pytest

import legato
from legato.records import BlueprintRecord, semver_key
from legato.store import Store, open_store
from tests.helpers import run, wait_until

NOW = 1_800_000_000.0


async def opened(url: str) -> Store:
    store = open_store(url)
    await store.open()
    return store


def test_publishing_is_idempotent_and_a_version_is_immutable(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            first = await store.publish_blueprint("default", "order", "1.0.0", "ab12", "a", NOW)
            assert first == BlueprintRecord("default", "order", "1.0.0", "ab12", "a", NOW)
            again = await store.publish_blueprint("default", "order", "1.0.0", "ab12", "a", NOW + 5)
            assert again == first  # the first publication stands, time included
            with pytest.raises(legato.Conflict) as refused:
                await store.publish_blueprint("default", "order", "1.0.0", "cd34", "b", NOW)
            message = str(refused.value)
            assert "default/order version 1.0.0" in message and "ab12" in message
            assert "cd34" in message and "immutable" in message and "1.0.1" in message
            assert await store.get_blueprint("default", "order", "1.0.0") == first
            # Other namespaces and names are separate blueprints.
            other = await store.publish_blueprint("billing", "order", "1.0.0", "cd34", "b", NOW)
            assert other.source == "b"
        finally:
            await store.close()

    run(body)


def test_a_refused_publication_does_not_fail_writes_grouped_with_it(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            await store.publish_blueprint("default", "order", "1.0.0", "ab12", "a", NOW)
            outcomes = await asyncio.gather(
                store.publish_blueprint("default", "order", "1.0.0", "cd34", "b", NOW),
                store.publish_blueprint("default", "order", "1.1.0", "ef56", "c", NOW),
                store.append_event('{"id": "e1"}', "t", "s", NOW),
                return_exceptions=True,
            )
            assert isinstance(outcomes[0], legato.Conflict)
            assert isinstance(outcomes[1], BlueprintRecord) and outcomes[2] == 1
            assert (await store.get_blueprint("default", "order", "1.1.0")) == outcomes[1]
        finally:
            await store.close()

    run(body)


def test_the_latest_version_is_chosen_by_semantic_version(store_url: str) -> None:
    versions = ["1.9.0", "1.10.0-rc.1", "1.2.0", "1.10.0-beta", "0.9.9"]

    async def body() -> None:
        store = await opened(store_url)
        try:
            assert await store.get_blueprint("default", "order", None) is None
            for v in versions:
                await store.publish_blueprint("default", "order", v, f"d{v}", v, NOW)
            latest = await store.get_blueprint("default", "order", None)
            # 1.10 > 1.9 (numbers, not text), and rc > beta among prereleases.
            assert latest is not None and latest.version == "1.10.0-rc.1"
            await store.publish_blueprint("default", "order", "1.10.0", "d", "final", NOW)
            latest = await store.get_blueprint("default", "order", None)
            assert latest is not None and latest.source == "final"  # a release tops its rcs
            assert await store.get_blueprint("default", "order", "2.0.0") is None
            assert await store.get_blueprint("default", "other", None) is None
        finally:
            await store.close()

    run(body)


def test_listing_shows_every_version_in_order(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            assert await store.list_blueprints() == []
            for ns, name, v in [
                ("b", "pay", "1.10.0"),
                ("a", "ship", "2.0.0"),
                ("b", "pay", "1.9.0"),
                ("a", "order", "1.0.0"),
                ("b", "pay", "1.9.0-rc.1"),
            ]:
                await store.publish_blueprint(ns, name, v, "d", "src", NOW)
            listed = [(r.namespace, r.name, r.version) for r in await store.list_blueprints()]
            assert listed == [
                ("a", "order", "1.0.0"),
                ("a", "ship", "2.0.0"),
                ("b", "pay", "1.9.0-rc.1"),
                ("b", "pay", "1.9.0"),
                ("b", "pay", "1.10.0"),
            ]
            only_b = await store.list_blueprints("b")
            assert [r.version for r in only_b] == ["1.9.0-rc.1", "1.9.0", "1.10.0"]
            assert await store.list_blueprints("nobody") == []
        finally:
            await store.close()

    run(body)


def test_events_are_read_in_order_after_an_id_and_since_a_time(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            ids = []
            for n in range(5):
                envelope = json.dumps({"id": f"e{n}", "type": "order.placed", "data": {"n": n}})
                ids.append(await store.append_event(envelope, "order.placed", "shop", NOW + n))
            assert ids == sorted(ids) and len(set(ids)) == 5
            every = await store.read_events(0, 0.0)
            assert [e.id for e in every] == ids
            assert every[2].envelope == {"id": "e2", "type": "order.placed", "data": {"n": 2}}
            assert every[2].published_at == NOW + 2
            after = await store.read_events(ids[1], 0.0)
            assert [e.envelope["id"] for e in after] == ["e2", "e3", "e4"]
            since = await store.read_events(0, NOW + 3)
            assert [e.envelope["id"] for e in since] == ["e3", "e4"]
            assert [e.id for e in await store.read_events(0, 0.0, limit=2)] == ids[:2]
            assert await store.read_events(ids[-1], 0.0) == []
        finally:
            await store.close()

    run(body)


def test_event_ids_from_concurrent_appends_are_unique_and_readable(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            ids = await asyncio.gather(
                *(store.append_event(json.dumps({"n": n}), "t", "s", NOW) for n in range(40))
            )
            assert len(set(ids)) == 40
            seen = []
            after = 0
            while batch := await store.read_events(after, 0.0, limit=7):
                seen.extend(e.envelope["n"] for e in batch)
                after = batch[-1].id
            assert sorted(seen) == list(range(40))
        finally:
            await store.close()

    run(body)


def test_an_append_wakes_this_process_listeners(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        woke = asyncio.Event()
        loop = asyncio.get_running_loop()
        store.add_listener(lambda: loop.call_soon_threadsafe(woke.set))
        try:
            if not store_url.startswith("sqlite"):  # PostgreSQL: its notices come by LISTEN
                await wait_until(lambda: store.changes_are_pushed, 30, "the store listens")
            woke.clear()
            await store.append_event("{}", "t", "s", NOW)
            await asyncio.wait_for(woke.wait(), 5)
        finally:
            await store.close()

    run(body)


def test_listening_runs_keep_the_time_they_started_listening(store_url: str) -> None:
    async def body() -> None:
        store = await opened(store_url)
        try:
            assert await store.listening_runs() == []
            await store.set_listening("r2", True, NOW + 1)
            await store.set_listening("r1", True, NOW + 2)
            await store.set_listening("r2", True, NOW + 9)  # still listening since NOW + 1
            await store.set_listening("r3", True, NOW + 3)
            assert await store.listening_runs() == ["r2", "r1", "r3"]
            await store.set_listening("r1", False, NOW + 4)
            await store.set_listening("nobody", False, NOW + 4)  # not listening: no error
            assert await store.listening_runs() == ["r2", "r3"]
            await store.set_listening("r1", True, NOW + 5)
            assert await store.listening_runs() == ["r2", "r3", "r1"]
        finally:
            await store.close()

    run(body)


def test_semver_key_orders_by_precedence() -> None:
    ordered = [
        "not-a-version",
        "0.1.0",
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.9.0",
        "1.10.0",
    ]
    assert sorted(reversed(ordered), key=semver_key) == ordered
    assert semver_key("1.0.0+build.5") == semver_key("1.0.0")
