"""Apps hold their own registrations; blueprints say which of them they need."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import legato
from legato.apps import BUILTINS, DEFAULT_APP
from legato.blueprint import KindCall, load_blueprint, required_capabilities

HEAD = "document: {dsl: '1.0.3', namespace: tests, name: needs, version: '1.0.0'}\n"


def test_the_module_decorators_register_into_the_default_app_only() -> None:
    other = legato.App("tests.unit-other")

    @legato.workflow(name="tests.apps.default-only")
    async def default_only() -> None:
        return None

    @legato.step(queue="tests-gpu")
    def routed() -> int:
        return 1

    @legato.blueprint.function("tests.apps.default-fn")
    def default_fn() -> int:
        return 1

    assert DEFAULT_APP.lookup("tests.apps.default-only") is default_only
    assert "step:" + routed.name in DEFAULT_APP.registered()
    assert "tests.apps.default-fn" in legato.blueprint.functions()
    assert other.lookup("tests.apps.default-only") is None
    assert other.registered() == {} and other.capabilities() == []


def test_an_app_keeps_its_registrations_to_itself() -> None:
    billing, shipping = legato.App("tests.billing"), legato.App("tests.shipping")

    @billing.workflow(name="tests.invoice")
    async def invoice(n: int) -> int:
        return n

    @billing.step(queue="tests-slow")
    def slow() -> int:
        return 1

    @billing.function("tests.charge")
    def charge(amount: int) -> int:
        return amount

    @billing.task_kind("tests:approve")
    async def approve(call: KindCall) -> Any:
        return None

    assert billing.lookup("tests.invoice") is invoice
    assert billing.lookup("step:" + slow.name) is not None
    assert billing.capabilities() == ["tests.charge", "tests:approve"]
    assert shipping.lookup("tests.invoice") is None and shipping.capabilities() == []
    assert DEFAULT_APP.lookup("tests.invoice") is None
    assert "tests.charge" not in legato.blueprint.functions()
    # Legato's own registrations are served by every app, and required of none.
    for app in (billing, shipping):
        assert app.family_prefixes() == ["blueprint:"]
        assert app.kind("legato:wait-signal") is BUILTINS.kinds["legato:wait-signal"]
        assert app.lookup("blueprint:tests/x") is not None
    assert "tests:approve" in billing.kind_checks() and "tests:approve" not in shipping.kinds


def test_the_legato_kind_namespace_is_legatos_own() -> None:
    with pytest.raises(legato.ConfigurationError, match="Legato's own"):
        legato.App("tests.thief").task_kind("legato:wait-signal")


def test_a_blueprint_requires_the_functions_and_kinds_it_calls_wherever_they_are() -> None:
    document = load_blueprint(
        HEAD
        + """
use:
  functions:
    local:
      call: tests.inside-definition
do:
  - plain: {call: tests.top}
  - defined: {call: local}
  - web:
      call: http
      with:
        method: post
        endpoint: https://example.com
        body: {call: tests.not-a-task}
  - loop:
      for: {each: i, in: '[1]'}
      do:
        - inner: {call: tests:kind-in-loop}
  - both:
      fork:
        branches:
          - left: {call: tests.in-fork}
  - guarded:
      try:
        - risky: {call: tests.in-try}
      catch:
        do:
          - recover: {call: tests.in-catch}
  - hear:
      listen:
        to: {one: {with: {type: com.example.x}}}
      foreach:
        do:
          - each: {call: tests.in-foreach}
  - wait:
      call: legato:wait-signal
      with: {signal: go}
  - catalog: {call: 'log:1.0.0@default'}
""",
        kinds={**DEFAULT_APP.kind_checks(), "tests:kind-in-loop": lambda _value: []},
    ).document
    assert required_capabilities(document) == (
        "tests.in-catch",
        "tests.in-foreach",
        "tests.in-fork",
        "tests.in-try",
        "tests.inside-definition",
        "tests.top",
        "tests:kind-in-loop",
    )
    plain = load_blueprint(HEAD + "do:\n  - ok: {set: {ok: true}}\n").document
    assert required_capabilities(plain) == ()


def test_the_command_line_names_an_app_as_file_colon_name(tmp_path: Path) -> None:
    from legato.cli.loader import load_registry

    source = tmp_path / "tests_cli_registry_app.py"
    source.write_text(
        "import legato\n"
        "billing = legato.App('billing')\n"
        "@billing.function('billing.charge')\n"
        "def charge(amount: int) -> int:\n"
        "    return amount\n"
    )
    found = load_registry(f"{source}:billing")
    assert found.name == "billing" and found.capabilities() == ["billing.charge"]
    assert load_registry(str(source)) is DEFAULT_APP
    with pytest.raises(
        legato.ConfigurationError, match=r"no legato\.App named 'shipping'.*billing"
    ):
        load_registry(f"{source}:shipping")
