"""Hostile documents: the validator answers every input with a blueprint or BlueprintInvalid.

A server validates documents that remote callers send it, so no text may crash the
validator, hang it, or surface as another exception (``RecursionError``, ``ValueError``,
``UnicodeDecodeError`` were all seen). Three sources of input:

* the corpus in ``tests/corpus/blueprints``: each file once broke the validator;
* mutants of the example blueprints: slices deleted, repeated or replaced by YAML
  constructs that stress a parser (anchors, aliases, tags, merges, deep brackets);
* arbitrary bytes, decoded as a file would be.

Each problem must read as one line, ``file:line:column path: message``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legato.blueprint import Blueprint, load_blueprint, load_blueprint_file
from legato.blueprint.document import decode_source
from legato.blueprint.source import Problem
from legato.errors import BlueprintInvalid

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus" / "blueprints"
SEEDS = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").rglob("*.yaml"))]

EXPECTED = {
    "alias-bomb.yaml": "expands to more than 100,000 values",
    "alias-chain.yaml": "nests deeper than 100 levels once its YAML aliases are expanded",
    "big-integer.yaml": "is not a valid '!!int' value",
    "deep-flow.yaml": "nests deeper than 100 levels",
    "deep.json": "nests deeper than 100 levels",
    "escape-past-unicode.yaml": "an escape past \\U0010FFFF names no Unicode character",
    "latin-1.yaml": "not UTF-8 text: byte 0xe9",
    "merge-of-scalar.yaml": "unknown key 'x'",
    "nul-byte.yaml": "character U+0000 is not allowed",
    "self-alias.yaml": "an alias refers to itself",
    "tagged-key.yaml": "key 'abc' is not a valid '!!float' value",
}

HOSTILE = [
    "&a ",
    "*a",
    "&b [*a, *a, *a]",
    "!!float ",
    "!!binary ",
    "!!python/object:os.system ",
    "<<: *a\n",
    "<<: [*a, *b]\n",
    "[" * 40,
    "]" * 40,
    "{" * 40,
    "? ",
    ": ",
    "- ",
    "\t",
    "\x00",
    "\ufeff",
    "\udcff",
    "${ ",
    " }",
    "${ " + " + ".join(["."] * 300) + " }",
    "'",
    '"',
    "|\n",
    ">-\n",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\n  ",
    "9" * 400,
    ".nan",
    "-.inf",
    "0x",
    "0o9",
]


def assert_one_clear_answer(text: str, filename: str = "fuzz.yaml") -> None:
    """Valid, or BlueprintInvalid whose every problem is one positioned line."""
    try:
        result = load_blueprint(text, filename)
    except BlueprintInvalid as exc:
        assert exc.problems, "BlueprintInvalid without a problem"
        for problem in exc.problems:
            assert isinstance(problem, Problem), problem
            assert problem.line >= 1 and problem.column >= 1, problem
            assert problem.message and "\n" not in problem.message, problem
            assert "Traceback" not in problem.message, problem
        return
    assert isinstance(result, Blueprint)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_document_of_the_corpus_is_refused_with_its_reason(name: str) -> None:
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint_file(CORPUS / name)
    assert EXPECTED[name] in str(caught.value)
    assert_one_clear_answer_of(caught.value)


def assert_one_clear_answer_of(exc: BlueprintInvalid) -> None:
    for problem in exc.problems:
        assert "\n" not in problem.message


def test_the_corpus_has_an_expectation_for_every_file() -> None:
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(EXPECTED)


def test_a_fifty_thousand_term_expression_is_refused_without_compiling_it() -> None:
    expression = " + ".join([".a"] * 50_000)
    text = (
        'document: {dsl: "1.0.0", namespace: fuzz, name: e, version: "1.0.0"}\n'
        f'do:\n  - s:\n      set:\n        v: "${{ {expression} }}"\n'
    )
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint(text)
    assert "the expression is 249,997 characters; the limit is 4,096" in str(caught.value)
    assert "LEGATO_BLUEPRINT_MAX_EXPRESSION_CHARS" in str(caught.value)


def test_a_limit_is_raised_by_its_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        'document: {dsl: "1.0.0", namespace: fuzz, name: d, version: "1.0.0"}\n'
        f"do: {'[' * 150}{']' * 150}\n"
    )
    with pytest.raises(BlueprintInvalid, match="nests deeper than 100 levels"):
        load_blueprint(text)
    monkeypatch.setenv("LEGATO_BLUEPRINT_MAX_DEPTH", "200")
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint(text)
    assert "nests deeper" not in str(caught.value)  # read: now 'do' itself is refused
    assert "do[0]" in str(caught.value)


def test_a_depth_past_what_the_parser_can_recurse_is_still_one_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_BLUEPRINT_MAX_DEPTH", "100000")
    with pytest.raises(BlueprintInvalid, match="nests too deeply for the YAML parser"):
        load_blueprint_file(CORPUS / "deep-flow.yaml")


def test_a_setting_that_is_not_a_positive_number_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_BLUEPRINT_MAX_DEPTH", "0")
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint_file(CORPUS / "deep-flow.yaml")
    assert "nests deeper than 100 levels" in str(caught.value)


def test_expressions_stop_compiling_once_the_budget_is_spent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_BLUEPRINT_MAX_COMPILE_SECONDS", "0.000001")
    tasks = "".join(f"  - t{i}:\n      set:\n        v: '${{ .a + {i} }}'\n" for i in range(5))
    text = 'document: {dsl: "1.0.0", namespace: fuzz, name: b, version: "1.0.0"}\ndo:\n' + tasks
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint(text)
    refused = [p for p in caught.value.problems if "took more than" in p.message]
    assert len(refused) == 4  # the first compiled, and spent the whole budget
    assert "LEGATO_BLUEPRINT_MAX_COMPILE_SECONDS" in refused[0].message


def test_a_document_over_the_size_limit_is_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_BLUEPRINT_MAX_BYTES", "100")
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint(SEEDS[0])
    assert "bytes; the limit is 100 (set LEGATO_BLUEPRINT_MAX_BYTES" in str(caught.value)


@st.composite
def mutants(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 80)))
        action = draw(st.sampled_from(["delete", "repeat", "insert", "replace"]))
        if action == "delete":
            text = text[:start] + text[end:]
        elif action == "repeat":
            text = text[:end] + text[start:end] * draw(st.integers(2, 30)) + text[end:]
        else:
            piece = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=12)))
            keep = end if action == "replace" else start
            text = text[:start] + piece + text[keep:]
    return text


FUZZ = settings(
    max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@FUZZ
@given(mutants())
def test_any_mutant_of_an_example_gets_one_clear_answer(text: str) -> None:
    assert_one_clear_answer(text)


@settings(max_examples=2000, deadline=None, derandomize=True)
@given(st.binary(max_size=400))
def test_any_bytes_get_one_clear_answer(data: bytes) -> None:
    try:
        text = decode_source(data, "bytes.yaml")
    except BlueprintInvalid as exc:
        assert_one_clear_answer_of(exc)
        return
    assert_one_clear_answer(text)
