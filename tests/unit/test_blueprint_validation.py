"""Blueprint validation: each kind of mistake is reported with its file, line and DSL path.

Every malformed document below is small and written out in full, so the expected line
numbers can be read off the text. Line 1 is ``document:``; the five-line header is the
same in all of them, so ``do:`` is on line 6 and its first task on line 7.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from legato.blueprint.source import Problem, format_path, load_source
from legato.blueprint.validation import UNSUPPORTED, check_text

HEADER = """\
document:
  dsl: '1.0.0'
  namespace: shop
  name: order
  version: '1.0.0'
"""


def problems(text: str, filename: str = "order.yaml", **options: Any) -> list[str]:
    _document, found = check_text(text, filename, **options)
    return [str(problem) for problem in found]


def only_problem(text: str, **options: Any) -> str:
    found = problems(text, **options)
    assert len(found) == 1, found
    return found[0]


# -- documents that are fine -------------------------------------------------------------

VALID = [
    HEADER
    + """\
do:
  - greet:
      set:
        message: ${ "hello " + .name }
""",
    HEADER
    + """\
use:
  retries:
    patient:
      delay: {seconds: 1}
      backoff: {exponential: {}}
      limit: {attempt: {count: 5, duration: PT1M}, duration: PT10M}
      jitter: {from: PT0.1S, to: {milliseconds: 500}}
      when: .status >= 500
  errors:
    outOfStock: {type: https://shop.example/errors/stock, status: 409, title: Out of stock}
  timeouts:
    short: {after: PT5S}
  authentications:
    shopAuth:
      bearer: {token: "${ $secrets.shop.token }"}
  secrets: [shop]
  functions:
    reserve:
      call: http
      with: {method: post, endpoint: https://shop.example/reserve}
  catalogs:
    shared: {endpoint: https://catalog.example/functions}
timeout:
  after: {hours: 1}
input:
  from: .order
do:
  - reserveItems:
      call: reserve
      with: {items: "${ .items }"}
      timeout: short
  - eachItem:
      for: {each: item, in: .items, at: i}
      while: $i < 10
      do:
        - check:
            if: $item.quantity > 0
            call: http
            with:
              method: get
              endpoint:
                uri: https://shop.example/stock/{id}
                authentication: {use: shopAuth}
              query: {sku: "${ $item.sku }"}
  - charge:
      try:
        - pay:
            call: log:1.0.0@shared
      catch:
        errors: {with: {status: 503}}
        as: failure
        when: $failure.status == 503
        retry: patient
        do:
          - giveUp:
              raise: {error: outOfStock}
  - route:
      switch:
        - big:
            when: .total > 100
            then: review
        - other:
            then: ship
  - review:
      wait: PT1H
      then: ship
  - ship:
      fork:
        compete: false
        branches:
          - notify:
              emit:
                event:
                  with: {source: https://shop.example, type: shop.shipped.v1, data: "${ . }"}
          - label:
              run:
                shell: {command: echo label, arguments: [one]}
  - waitForDelivery:
      listen:
        to:
          any:
            - with: {type: shop.delivered.v1}
              correlate: {orderId: {from: .data.orderId, expect: $context.orderId}}
          until: length > 0
        read: envelope
      foreach:
        item: delivery
        do:
          - record:
              set: "${ $delivery }"
      export:
        as: "$context + {delivered: true}"
      then: end
output:
  as: .
""",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_documents_have_no_problems(text: str) -> None:
    document, found = check_text(text, "order.yaml")
    assert found == []
    assert isinstance(document, dict)


def test_a_schedule_is_accepted() -> None:
    text = HEADER + "schedule:\n  on:\n    one:\n      with: {type: shop.opened.v1}\n"
    text += "do:\n  - go:\n      set: {a: 1}\n"
    assert problems(text) == []


# -- the malformed documents the issue asks for -----------------------------------------


def test_wrong_indentation_is_a_syntax_problem_with_its_line() -> None:
    text = (
        HEADER
        + """\
do:
  - getPet:
      call: http
      with:
        method: get
       endpoint: https://petstore.example/pets/1
"""
    )
    message = only_problem(text)
    assert message.startswith("order.yaml:11:8 do[0].getPet.with: bad indentation")


def test_task_fields_not_indented_under_the_task_name() -> None:
    text = HEADER + "do:\n  - getPet:\n    call: http\n"
    assert only_problem(text) == (
        "order.yaml:7:5 do[0]: a task list item has one key, the task's name, but this one "
        "has 2 (getPet, call); indent the task's fields under its name"
    )


def test_unknown_task_type() -> None:
    text = HEADER + "do:\n  - notify:\n      sned:\n        to: someone\n"
    assert only_problem(text) == (
        "order.yaml:8:7 do[0].notify.sned: unknown task type 'sned' "
        "(expected one of: call, do, emit, for, fork, listen, raise, run, set, switch, try, wait)"
    )


def test_misspelt_task_type_gets_a_suggestion() -> None:
    text = HEADER + "do:\n  - notify:\n      emitt:\n        event: {}\n"
    assert "unknown task type 'emitt' (did you mean 'emit'?)" in only_problem(text)


def test_bad_jq_expression() -> None:
    text = HEADER + "do:\n  - total:\n      set:\n        sum: ${ .items | add + }\n"
    message = only_problem(text)
    assert message.startswith("order.yaml:9:14 do[0].total.set.sum: bad jq expression")
    assert "'.items | add +'" in message


def test_fields_that_are_always_expressions_are_compiled_without_braces() -> None:
    text = HEADER + "do:\n  - maybe:\n      if: .a ==\n      set: {a: 1}\n"
    assert only_problem(text).startswith("order.yaml:8:11 do[0].maybe.if: bad jq expression")


def test_variables_bound_by_for_and_catch_are_in_scope_only_inside() -> None:
    text = (
        HEADER
        + """\
do:
  - loop:
      for: {each: color, in: .colors}
      do:
        - paint:
            set: {c: "${ $color }", i: "${ $index }"}
  - after:
      set: {c: "${ $color }"}
  - guarded:
      try:
        - risky:
            wait: PT1S
      catch:
        as: err
        do:
          - log:
              set: {e: "${ $err }", x: "${ $error }"}
"""
    )
    found = problems(text)
    assert len(found) == 2, found
    assert found[0].startswith("order.yaml:13:16 do[1].after.set.c: bad jq expression")
    assert "$color is not defined" in found[0]
    assert found[1].startswith("order.yaml:22:40 do[2].guarded.catch.do[0].log.set.x:")


def test_then_pointing_at_a_missing_task() -> None:
    text = (
        HEADER
        + """\
do:
  - check:
      set: {ok: true}
      then: shipOrder
  - shipOrdr:
      wait: PT1S
"""
    )
    assert only_problem(text) == (
        "order.yaml:9:13 do[0].check.then: no task named 'shipOrder' in this list "
        "(did you mean 'shipOrdr'?); 'then' takes continue, exit, end or the name of a task "
        "in the same list"
    )


def test_then_cannot_target_a_task_of_another_list() -> None:
    text = (
        HEADER
        + """\
do:
  - outer:
      do:
        - inner:
            set: {a: 1}
            then: last
  - last:
      set: {b: 2}
"""
    )
    assert "order.yaml:11:19 do[0].outer.do[0].inner.then: no task named 'last'" in only_problem(
        text
    )


def test_a_cycle_of_unconditional_then_directives() -> None:
    text = (
        HEADER
        + """\
do:
  - a:
      set: {step: a}
      then: b
  - b:
      set: {step: b}
      then: a
"""
    )
    assert only_problem(text) == (
        "order.yaml:12:13 do[1].b.then: tasks a -> b -> a form a loop with no way out; "
        "add a switch (or an 'if') that leaves it, or a then: exit or end"
    )


def test_a_loop_through_implicit_continue_is_found_too() -> None:
    text = HEADER + "do:\n  - a:\n      set: {x: 1}\n  - b:\n      wait: PT1S\n      then: a\n"
    assert "tasks a -> b -> a form a loop" in only_problem(text)


def test_a_loop_with_a_way_out_is_fine() -> None:
    text = (
        HEADER
        + """\
do:
  - poll:
      call: http
      with: {method: get, endpoint: https://shop.example/status}
  - decide:
      switch:
        - done:
            when: .ready
            then: exit
        - again:
            then: pause
  - pause:
      wait: PT10S
      then: poll
"""
    )
    assert problems(text) == []


def test_a_string_where_a_list_is_needed() -> None:
    text = HEADER + "do: getPet\n"
    assert only_problem(text) == (
        "order.yaml:6:5 do: expected a list of tasks ('- taskName:' items), got a string"
    )


def test_an_integer_where_a_string_is_needed() -> None:
    text = HEADER + "do:\n  - go:\n      run:\n        shell:\n          command: 42\n"
    assert only_problem(text) == (
        "order.yaml:10:20 do[0].go.run.shell.command: expected a string, got an integer (quote it)"
    )


def test_an_unquoted_version_is_a_number_and_a_problem() -> None:
    text = HEADER.replace("version: '1.0.0'", "version: 1.0") + "do:\n  - a:\n      set: {a: 1}\n"
    assert only_problem(text) == (
        "order.yaml:5:12 document.version: expected a string, got a number (quote it)"
    )


def test_unknown_call_type_with_did_you_mean() -> None:
    text = (
        HEADER
        + """\
do:
  - reserve:
      call: http
      with: {method: post, endpoint: https://shop.example/reserve}
  - pay:
      call: http
      with: {method: post, endpoint: https://shop.example/pay}
  - charge:
      call: htp
      with: {method: post, endpoint: https://shop.example/charge}
"""
    )
    assert only_problem(text) == (
        "order.yaml:14:13 do[2].charge.call: unknown call type 'htp' (did you mean 'http'?)"
    )


def test_unknown_key_with_did_you_mean() -> None:
    text = HEADER + "do:\n  - getPet:\n      call: http\n      wiht: {method: get}\n"
    found = problems(text)
    assert found == [
        "order.yaml:7:5 do[0].getPet: missing required field 'with'",
        "order.yaml:9:7 do[0].getPet.wiht: unknown key 'wiht' (did you mean 'with'?)",
    ]


def test_missing_required_field() -> None:
    text = HEADER + "do:\n  - getPet:\n      call: http\n      with:\n        method: get\n"
    assert only_problem(text) == (
        "order.yaml:9:7 do[0].getPet.with: missing required field 'endpoint'"
    )


def test_missing_document_fields_point_at_the_header() -> None:
    text = "document:\n  dsl: '1.0.0'\n  name: order\ndo:\n  - a:\n      set: {a: 1}\n"
    assert problems(text) == [
        "order.yaml:1:1 document: missing required field 'namespace'",
        "order.yaml:1:1 document: missing required field 'version'",
    ]


def test_unknown_extension_task_kind() -> None:
    def check_approve(arguments: Any) -> list[str]:
        return [] if isinstance(arguments, dict) and "approver" in arguments else ["needs approver"]

    kinds = {"acme:approve": check_approve, "acme:notify": lambda _arguments: []}
    text = (
        HEADER
        + """\
do:
  - ask:
      call: acme:aprove
  - askAgain:
      call: acme:approve
      with: {who: boss}
"""
    )
    assert problems(text, kinds=kinds) == [
        "order.yaml:8:13 do[0].ask.call: unknown extension task kind 'acme:aprove' "
        "(known: acme:approve, acme:notify) (did you mean 'acme:approve'?)",
        "order.yaml:11:13 do[1].askAgain.with: needs approver",
    ]


def test_no_extension_kinds_registered() -> None:
    text = HEADER + "do:\n  - ask:\n      call: acme:approve\n"
    assert only_problem(text).endswith(
        "unknown extension task kind 'acme:approve' (known: none registered)"
    )


def test_undefined_retry_policy_reference() -> None:
    text = (
        HEADER
        + """\
use:
  retries:
    patient:
      delay: PT1S
do:
  - tryIt:
      try:
        - getPet:
            call: http
            with: {method: get, endpoint: https://petstore.example/pets/1}
      catch:
        retry: patiant
"""
    )
    assert only_problem(text) == (
        "order.yaml:17:16 do[0].tryIt.catch.retry: no retry policy named 'patiant' under "
        "use.retries (did you mean 'patient'?); defined: patient"
    )


def test_run_container_is_not_supported() -> None:
    text = HEADER + "do:\n  - build:\n      run:\n        container:\n          image: alpine\n"
    message = only_problem(text)
    assert message.startswith("order.yaml:9:9 do[0].build.run.container: ")
    assert "not supported by Legato" in message
    assert "run: shell" in message  # says what to do instead


@pytest.mark.parametrize("kind", ["asyncapi", "grpc", "mcp", "a2a"])
def test_unsupported_call_types(kind: str) -> None:
    text = HEADER + f"do:\n  - talk:\n      call: {kind}\n      with: {{}}\n"
    message = only_problem(text)
    assert message.startswith(f"order.yaml:8:13 do[0].talk.call: 'call: {kind}' is not supported")
    assert UNSUPPORTED[f"call: {kind}"] in message


@pytest.mark.parametrize(
    ("body", "feature"),
    [
        ("evaluate: {language: js}\n", "evaluate.language"),
        ("evaluate: {mode: loose}\n", "evaluate.mode: loose"),
        ("input:\n  schema: {format: avro, document: {}}\n", "schema format other than json"),
        (
            "do:\n  - s:\n      run:\n        script:\n          language: python\n"
            "          source: {endpoint: https://scripts.example/s.py}\n",
            "run: script source",
        ),
    ],
)
def test_other_unsupported_features(body: str, feature: str) -> None:
    text = HEADER + body + ("" if body.startswith("do:") else "do:\n  - a:\n      wait: PT1S\n")
    message = only_problem(text)
    assert f"'{feature}' is not supported by Legato: {UNSUPPORTED[feature]}" in message


def test_unsupported_lists_a_reason_for_every_feature() -> None:
    assert {"call: asyncapi", "call: grpc", "call: mcp", "call: a2a", "run: container"} <= set(
        UNSUPPORTED
    )
    assert all(reason.strip() for reason in UNSUPPORTED.values())


def test_several_problems_in_one_document_are_all_reported() -> None:
    text = (
        HEADER
        + """\
do:
  - a:
      set: {x: "${ .x + }"}
      then: c
  - b:
      call: htp
  - b:
      wait: soon
      colour: red
"""
    )
    found = problems(text)
    assert [line.split(" ", 2)[:2] for line in found] == [
        ["order.yaml:8:16", "do[0].a.set.x:"],
        ["order.yaml:9:13", "do[0].a.then:"],
        ["order.yaml:11:13", "do[1].b.call:"],
        ["order.yaml:12:5", "do[2].b:"],
        ["order.yaml:13:13", "do[2].b.wait:"],
        ["order.yaml:14:7", "do[2].b.colour:"],
    ]
    assert "duplicate task name 'b'" in found[3]


# -- functions and call targets ---------------------------------------------------------


def test_known_functions_are_checked_when_given() -> None:
    text = HEADER + "do:\n  - a:\n      call: reserveStock\n"
    assert problems(text) == []  # unknown set of functions: accepted
    assert problems(text, functions=["reserveStock"]) == []
    message = only_problem(text, functions=["reserveStok"])
    assert message.startswith("order.yaml:8:13 do[0].a.call: unknown function 'reserveStock'")
    assert "(did you mean 'reserveStok'?)" in message


def test_catalog_references_need_a_declared_catalog() -> None:
    text = HEADER + "do:\n  - a:\n      call: log:1.0.0@global\n  - b:\n      call: log:1@default\n"
    assert only_problem(text).startswith(
        "order.yaml:8:13 do[0].a.call: no catalog named 'global' under use.catalogs"
    )


# -- the loader -------------------------------------------------------------------------


def test_duplicate_keys_are_problems() -> None:
    text = HEADER + "do:\n  - a:\n      set: {x: 1}\n      set: {x: 2}\n"
    assert only_problem(text) == (
        "order.yaml:9:7 do[0].a.set: duplicate key 'set' (first defined on line 8); "
        "a key may appear once in a mapping"
    )


def test_scalars_follow_yaml_1_2() -> None:
    document, positions, found = load_source("on: yes\nday: 2024-01-01\nn: 012\nf: .inf\n")
    assert found == []
    assert document == {"on": "yes", "day": "2024-01-01", "n": 12, "f": math.inf}
    assert positions[("day",)] == (2, 6)


def test_json_documents_and_their_syntax_errors() -> None:
    good = '{"document": {"dsl": "1.0.0", "namespace": "a", "name": "b", "version": "1.0.0"},\n'
    good += ' "do": [{"x": {"wait": "PT1S"}}]}\n'
    assert problems(good, "flow.json") == []
    assert problems(good.replace('"PT1S"', '"later"'), "flow.json")[0].startswith(
        "flow.json:2:24 do[0].x.wait: 'later' is not a duration"
    )
    broken = problems('{"document": {,}}', "flow.json")
    assert broken == [
        "flow.json:1:15 JSON syntax error: Expecting property name enclosed in double quotes"
    ]


def test_an_empty_text_is_a_problem() -> None:
    assert problems("# nothing here\n") == ["order.yaml:1:1 the document is empty"]


def test_problem_text_and_paths() -> None:
    problem = Problem("order.yaml", 3, 5, "do[2].charge.call", "bad")
    assert str(problem) == "order.yaml:3:5 do[2].charge.call: bad"
    assert format_path(("do", 2, "charge", "call")) == "do[2].charge.call"
    assert format_path(()) == ""
