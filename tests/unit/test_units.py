"""Small pure pieces: payloads, retry policy, input binding, URLs, task numbering."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
from datetime import datetime, timedelta
from typing import Any

import pytest

import legato
from legato.payload import dumps, loads, to_jsonable
from legato.runtime.tasks import task_states
from legato.store import open_store


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_payloads_round_trip_through_annotations() -> None:
    text = dumps({"p": Point(1, 2), "when": datetime(2026, 1, 2)}, "value")
    assert loads(text, dict, "value") == {"p": {"x": 1, "y": 2}, "when": "2026-01-02T00:00:00"}
    assert loads(dumps(Point(3, 4), "value"), Point, "value") == Point(3, 4)


class Colour(enum.StrEnum):
    RED = "red"


class Rank(enum.IntEnum):
    TOP = 1


class Name(str):
    pass


def _exact_json(value: Any) -> bool:
    """Only exact JSON types, all the way down (what json.loads gives)."""
    if type(value) is dict:
        return all(type(k) is str and _exact_json(v) for k, v in value.items())
    if type(value) is list:
        return all(_exact_json(v) for v in value)
    return type(value) in (str, int, float, bool, type(None))


@pytest.mark.parametrize(
    "value",
    [Colour.RED, Rank.TOP, Name("n"), (1, Colour.RED), {1: Name("a")}, Point(1, 2), {3, 4}, "s"],
    ids=repr,
)
def test_jsonable_values_are_their_own_json_round_trip(value: Any) -> None:
    jsonable = to_jsonable(value, "value")
    assert _exact_json(jsonable)
    assert jsonable == json.loads(json.dumps(jsonable))


def test_unserialisable_payload_names_what_failed() -> None:
    with pytest.raises(legato.PayloadError, match="result of step 'x' cannot be stored as JSON"):
        dumps(object(), "result of step 'x'")
    with pytest.raises(legato.PayloadError, match="does not fit Point: y: Field required"):
        loads('{"x": 1}', Point, "input")


def test_retry_delays_grow_and_are_capped() -> None:
    policy = legato.Retry(max_attempts=10, initial_interval=1, backoff=2, max_interval=5, jitter=0)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 5, 5]
    assert policy.should_retry(ValueError(), 9)
    assert not policy.should_retry(ValueError(), 10)


def test_retry_policy_filters_errors() -> None:
    policy = legato.Retry(
        max_attempts=3, non_retryable=(KeyError,), retry_if=lambda e: "transient" in str(e)
    )
    assert not policy.should_retry(KeyError("x"), 1)
    assert not policy.should_retry(ValueError("permanent"), 1)
    assert policy.should_retry(ValueError("transient"), 1)
    with pytest.raises(ValueError, match="max_attempts"):
        legato.Retry(max_attempts=0)


async def _two(a: int, b: str = "x") -> str:
    return f"{a}{b}"


def test_workflow_input_from_json() -> None:
    wf = legato.Workflow(_two, name="two")
    assert wf.input_from_json({"a": 1}) == [[], {"a": 1}]
    assert wf.input_from_json([1, "y"]) == [[1, "y"], {}]
    with pytest.raises(legato.PayloadError, match="JSON object by parameter name"):
        wf.input_from_json(5)
    with pytest.raises(legato.PayloadError, match="input 'a' of workflow 'two'"):
        wf.input_from_json({"a": "not a number"})


def test_workflow_must_be_async() -> None:
    def sync() -> None:
        return None

    with pytest.raises(legato.ConfigurationError, match="async def"):
        legato.workflow(sync)  # type: ignore[arg-type]


def test_unknown_database_url_is_a_clear_error() -> None:
    with pytest.raises(legato.ConfigurationError, match="unsupported database URL scheme 'mysql'"):
        open_store("mysql://localhost/x")
    with pytest.raises(legato.ConfigurationError, match="names no file"):
        open_store("sqlite://")


def test_commands_outside_a_workflow_say_so() -> None:
    with pytest.raises(RuntimeError, match=r"inside a running @legato\.workflow"):
        legato.now()
    with pytest.raises(RuntimeError, match="inside a running step"):
        legato.idempotency_key()


def test_step_outside_a_workflow_runs_the_function() -> None:
    @legato.step
    def plus_one(x: int) -> int:
        return x + 1

    assert asyncio.run(plus_one(1)) == 2  # type: ignore[arg-type]


def test_task_numbering_follows_creation_order_not_completion() -> None:
    from legato.runtime.context import WorkflowContext
    from legato.runtime.loop import RunLoop

    seen: dict[str, str] = {}
    clock = [0.0]
    loop = RunLoop(lambda: clock[0], lambda: None, lambda _when: None)  # type: ignore[abstract]
    ctx = WorkflowContext("r", "w", {}, host=None)  # type: ignore[arg-type]

    async def leaf(name: str, delay: float) -> None:
        await asyncio.sleep(delay)  # a timer on the run's loop, on its clock
        task = asyncio.current_task()
        assert task is not None
        seen[name] = task_states[task].prefix

    async def root() -> None:
        await asyncio.gather(leaf("slow", 0.02), leaf("fast", 0.0))
        await asyncio.gather(leaf("third", 0.0))

    task = asyncio.Task(root(), loop=loop)
    ctx.bind_root(task)
    for _ in range(100):
        loop.run_turn()
        if task.done():
            break
        clock[0] += 0.01  # the slow leaf's timer comes due after the fast leaf ended
    assert task.done() and task.exception() is None
    assert seen == {"slow": "1.", "fast": "2.", "third": "3."}


def test_timedelta_everywhere() -> None:
    assert legato.timer(timedelta(minutes=2)).seconds == 120
