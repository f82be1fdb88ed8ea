"""Payloads a caller writes: every way they can be wrong is a PayloadError, at the caller.

NaN and infinities used to be turned into null on the way in, so a ``float`` input
started fine and failed only at the worker; an integer of 5,000 digits or JSON nested
1,000 deep gave a Python traceback from ``--input``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

import legato
from legato.errors import InvalidInput, PayloadError
from legato.payload import dumps, parse_json
from tests.helpers import run


@legato.workflow
async def takes_a_float(x: float) -> float:
    return x


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1.0, math.nan], {"a": math.inf}])
def test_nan_and_infinity_are_refused_when_encoded(value: Any) -> None:
    with pytest.raises(PayloadError, match="JSON has no NaN or Infinity"):
        dumps(value, "the input")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[NaN]", "NaN is not a JSON value"),
        ('{"a": -Infinity}', "-Infinity is not a JSON value"),
        ("9" * 5000, "an integer of more digits than Legato reads"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 200 levels"),
        ("[" * 201 + "]" * 201, "nested deeper than 200 levels"),
        ('{"a": ', "not valid JSON: Expecting value (line 1, column 7)"),
    ],
)
def test_bad_json_text_is_one_payload_error(text: str, message: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_json(text, "--input")
    assert message in str(caught.value)
    assert str(caught.value).startswith("--input ")
    assert isinstance(caught.value, InvalidInput)  # 400 over HTTP


def test_two_hundred_levels_are_accepted() -> None:
    assert parse_json("[" * 200 + "]" * 200, "--input") is not None


def test_a_nested_value_too_deep_to_encode_is_a_payload_error() -> None:
    deep: list[Any] = []
    for _ in range(3000):
        deep = [deep]
    with pytest.raises(PayloadError):
        dumps(deep, "the input")


def test_starting_a_run_with_nan_is_refused_and_creates_no_run(db_url: str) -> None:
    async def body() -> None:
        async with legato.AsyncClient(db_url) as client:
            with pytest.raises(PayloadError, match="NaN or Infinity"):
                await client.start(takes_a_float, math.nan, run_id="nan-run")
            assert await client.store.get_run("nan-run") is None  # nothing was stored
            assert await client.list() == []

    run(body)
