"""Registering Python functions and extension task kinds for blueprints."""

from __future__ import annotations

from typing import Any

import pytest

import legato
from legato.blueprint import KindCall, load_blueprint

HEAD = "document: {dsl: '1.0.3', namespace: tests, name: kinds, version: '1.0.0'}\n"


def test_two_functions_under_one_name_are_refused() -> None:
    @legato.blueprint.function("tests.bindings.once")
    def first() -> int:
        return 1

    with pytest.raises(legato.ConfigurationError, match="two functions are registered"):

        @legato.blueprint.function("tests.bindings.once")
        def second() -> int:
            return 2


def test_kind_names_are_namespaced_and_handlers_async() -> None:
    with pytest.raises(legato.ConfigurationError, match="<namespace>:<kind>"):
        legato.blueprint.task_kind("Review")
    with pytest.raises(legato.ConfigurationError, match="async def"):

        @legato.blueprint.task_kind("tests:sync-kind")  # type: ignore[arg-type]
        def not_async(call: KindCall) -> Any:
            return None


def test_a_kind_check_reports_through_validation() -> None:
    @legato.blueprint.task_kind(
        "tests:needs-team",
        check=lambda value: [] if isinstance(value, dict) and "team" in value else ["needs team"],
    )
    async def needs_team(call: KindCall) -> Any:
        return call.arguments

    body = "do:\n  - review:\n      call: tests:needs-team\n      with: {who: x}\n"
    with pytest.raises(legato.BlueprintInvalid) as caught:
        load_blueprint(HEAD + body, "kinds.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "kinds.yaml:5:13 do[0].review.with: needs team"
    ]


def test_wait_signal_accepts_an_expression_as_its_timeout() -> None:
    body = (
        "do:\n  - hold:\n      call: legato:wait-signal\n"
        "      with: {signal: go, timeout: '${ .wait }'}\n"
    )
    assert load_blueprint(HEAD + body, "kinds.yaml").name == "kinds"
    bad = body.replace("'${ .wait }'", "soon")
    with pytest.raises(legato.BlueprintInvalid, match="timeout"):
        load_blueprint(HEAD + bad, "kinds.yaml")
