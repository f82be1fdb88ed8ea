"""jq expressions: what an expression reads is what it mentions, and ``now`` is the clock's."""

from __future__ import annotations

import pytest

from legato.blueprint import expressions
from legato.blueprint.expressions import evaluate
from legato.errors import ExpressionError


class Unencodable:
    """A value jq could not be given: passing it would fail the evaluation."""


def test_variables_an_expression_does_not_mention_are_not_passed() -> None:
    variables = {"workflow": Unencodable(), "input": {"n": 1}, "item": 2}
    assert evaluate(".n + $item", {"n": 40}, variables) == 42
    assert evaluate("$input.n", None, variables) == 1
    with pytest.raises(TypeError):  # mentioned, so passed (and jq cannot take it)
        evaluate("$workflow", None, variables)


def test_a_standard_name_the_task_does_not_bind_is_null_and_others_do_not_compile() -> None:
    assert evaluate("$output", None, {}) is None
    assert evaluate(". as $x | $x + 1", 1, {}) == 2  # a variable of the program itself
    with pytest.raises(ExpressionError, match="not defined"):
        evaluate("$nowhere", None, {})


def test_now_reads_the_clock_of_the_context_and_only_when_called() -> None:
    calls: list[int] = []

    def clock() -> float:
        calls.append(1)
        return 1234.5

    token = expressions.clock.set(clock)
    try:
        assert evaluate("[now, now]", None, {}) == [1234.5, 1234.5]
        assert len(calls) == 1  # one reading per evaluation
        assert evaluate(".now", {"now": 1}, {}) == 1  # a field, not the builtin
        assert evaluate("$now", None, {"now": 7}) == 7  # a variable named now
        assert len(calls) == 1
        assert evaluate("def now: 3; now", None, {}) == 3  # the author's own now wins
        assert len(calls) == 2  # (it mentions the word: one unneeded reading)
    finally:
        expressions.clock.reset(token)
