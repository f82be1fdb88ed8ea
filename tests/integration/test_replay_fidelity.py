"""Replay fidelity: the first execution sees exactly the value a replay will decode.

Each workflow branches on the type of a step's result *before* a durable sleep, so the
branch is journalled by the first execution; the sleep evicts the run and the rest is a
replay from the journal. Had the first execution seen a different value than the replay
decodes (an enum member, then its plain value), the replay would take the other branch,
meet the journalled step of the first one, and park the run for non-determinism.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import defaultdict
from typing import Any

import pytest

import legato
from legato import RunStatus
from tests.helpers import run, running_worker

calls: dict[str, int] = defaultdict(int)


class Tier(enum.StrEnum):
    GOLD = "gold"


class Level(enum.IntEnum):
    HIGH = 3


class Sku(str):
    """A str subclass, as libraries return for identifiers."""


@dataclasses.dataclass
class Receipt:
    order: str
    tier: Tier
    lines: tuple[int, ...]


RESULTS: dict[str, Any] = {
    "strenum": Tier.GOLD,
    "intenum": Level.HIGH,
    "str-subclass": Sku("sku-1"),
    "dataclass": Receipt("o-1", Tier.GOLD, (1, 2)),
    "tuple": (Tier.GOLD, 2),
}


@legato.step
def produce(kind):  # type: ignore[no-untyped-def]  # unannotated on purpose
    return RESULTS[kind]


@legato.step
def as_annotated(kind: str) -> Tier:
    return Tier.GOLD


@legato.step
def took(key: str, branch: str) -> str:
    calls[f"{key}:{branch}"] += 1
    return branch


@legato.step
def took_other(key: str, branch: str) -> str:
    calls[f"{key}:{branch}"] += 1
    return branch


def _describe(value: Any) -> str:
    """The branch a workflow might take on a result: its type, and identity with a member."""
    if value is Tier.GOLD or value is Level.HIGH:
        return f"member {type(value).__name__}"
    if isinstance(value, Receipt | Sku | tuple):
        return f"instance {type(value).__name__}"
    return f"plain {type(value).__name__}"


@legato.workflow
async def branches_on_a_result(key: str, kind: str) -> list[Any]:
    value = await produce(kind)
    first = _describe(value)
    # A different step per branch: a replay that branched otherwise would be parked.
    if first.startswith("plain"):
        await took(key, first)
    else:
        await took_other(key, first)
    await legato.sleep(0.2)  # leave memory: everything after is a replay of the above
    return [first, _describe(value), value]


@pytest.mark.parametrize("kind", list(RESULTS))
def test_an_unannotated_result_takes_the_same_branch_on_first_run_and_replay(
    db_url: str, kind: str
) -> None:
    key = f"fidelity-{kind}-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(branches_on_a_result, key, kind)
            record = await client.wait(handle.run_id, timeout=20)
            assert record.status is RunStatus.COMPLETED, record.error
            first, replayed, value = await client.result(handle.run_id)
            assert first == replayed  # the branch, seen by the first run and by the replay
            assert first.startswith("plain")  # unannotated: plain JSON, as the replay decodes
            assert value == legato_json(RESULTS[kind])
            assert sum(v for k, v in calls.items() if k.startswith(key)) == 1

    run(body)


def legato_json(value: Any) -> Any:
    """What the journal holds for ``value``: its JSON form."""
    if isinstance(value, Receipt):
        return {"order": value.order, "tier": str(value.tier), "lines": list(value.lines)}
    if isinstance(value, tuple):
        return [legato_json(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    return str(value) if isinstance(value, str) else value


@legato.workflow
async def branches_on_an_annotated_result(key: str) -> list[str]:
    value = await as_annotated("strenum")
    first = _describe(value)
    await (took(key, first) if first.startswith("plain") else took_other(key, first))
    await legato.sleep(0.2)
    return [first, _describe(value)]


def test_an_annotated_result_is_the_annotated_type_on_first_run_and_replay(db_url: str) -> None:
    key = f"fidelity-annotated-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(branches_on_an_annotated_result, key)
            assert await client.result(handle.run_id, timeout=20) == ["member Tier"] * 2

    run(body)


@legato.workflow
async def branches_on_a_signal_and_a_child(key: str) -> list[str]:
    data = await legato.wait_for_signal("tier")  # first run: delivered while in memory
    child_value = await legato.child(child_returning, "strenum")
    seen = [_describe(data), _describe(child_value)]
    await took(key, "|".join(seen))
    await legato.sleep(0.2)
    return [*seen, _describe(data), _describe(child_value)]


@legato.workflow
async def child_returning(kind: str):  # type: ignore[no-untyped-def]  # unannotated
    return await produce(kind)


def test_signal_data_and_a_child_result_are_the_same_on_first_run_and_replay(
    db_url: str,
) -> None:
    key = f"fidelity-signal-{db_url}"

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(branches_on_a_signal_and_a_child, key)
            await client.signal(handle.run_id, "tier", Tier.GOLD)
            assert await client.result(handle.run_id, timeout=20) == ["plain str"] * 4

    run(body)
