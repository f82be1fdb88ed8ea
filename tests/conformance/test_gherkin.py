"""The feature-file reader: the Gherkin subset the conformance suite uses, and loud refusals."""

from __future__ import annotations

import pytest

from tests.conformance.gherkin import GherkinError, Step, parse_feature

FEATURE = '''\
Feature: Set Task
  As an implementer
  I want set tasks

  # a comment between scenarios
  Scenario: First
    Given a workflow with definition:
    """yaml
    do:
      - setShape:   # a YAML comment stays
          set:
            shape: circle
    """
    And given the workflow input is:
      """yaml
      size: 6
      """
    When the workflow is executed
    # a comment between steps
    Then the workflow should complete
    But setShape should run first

  Scenario: Second
    Then the workflow should complete with output:
    """
      indented: kept

    last: line
    """'''


def test_feature_scenarios_and_steps() -> None:
    feature = parse_feature(FEATURE, "set.feature")
    assert feature.name == "Set Task"
    assert feature.file == "set.feature"
    assert feature.description == "As an implementer\nI want set tasks"
    assert [s.name for s in feature.scenarios] == ["First", "Second"]
    first = feature.scenarios[0]
    assert first.line == 6
    assert [(s.keyword, s.text) for s in first.steps] == [
        ("Given", "a workflow with definition:"),
        ("And", "given the workflow input is:"),
        ("When", "the workflow is executed"),
        ("Then", "the workflow should complete"),
        ("But", "setShape should run first"),
    ]
    assert [s.line for s in first.steps] == [7, 14, 18, 20, 21]


def test_docstring_dedented_to_its_delimiter_with_content_type() -> None:
    first, second = parse_feature(FEATURE).scenarios
    definition = first.steps[0]
    assert definition.content_type == "yaml"
    assert definition.docstring == (
        "do:\n  - setShape:   # a YAML comment stays\n      set:\n        shape: circle"
    )
    assert first.steps[1].docstring == "size: 6"  # delimiter indented deeper than usual
    assert first.steps[2].docstring is None
    output = second.steps[0]
    assert output.content_type is None
    assert output.docstring == "  indented: kept\n\nlast: line"


def test_backtick_docstring_and_missing_trailing_newline() -> None:
    text = "Feature: F\n  Scenario: S\n    Given x:\n    ```json\n    {}\n    ```"
    (step,) = parse_feature(text).scenarios[0].steps
    assert step == Step("Given", "x:", 3, "{}", "json")


def test_scenario_description_before_its_steps() -> None:
    text = "Feature: F\n  Scenario: S\n    some words\n    When it runs\n"
    scenario = parse_feature(text).scenarios[0]
    assert scenario.description == "some words"
    assert [s.text for s in scenario.steps] == ["it runs"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Scenario: S\n", "expected 'Feature:' first"),
        ("", "no 'Feature:' line"),
        ("Feature: A\nFeature: B\n", "a second 'Feature:'"),
        ("Feature: F\n  Given x\n", "step outside a scenario"),
        ("Feature: F\n  Scenario: S\n    Given x\n    free text\n", "expected a step keyword"),
        ('Feature: F\n  Scenario: S\n    Given x:\n    """\n    a\n', "never closed"),
        ("Feature: F\n  Background:\n", "unsupported Gherkin syntax"),
        ("Feature: F\n  Scenario Outline: O\n", "unsupported Gherkin syntax"),
        ("@tag\nFeature: F\n", "unsupported Gherkin syntax"),
        ("Feature: F\n  Scenario: S\n    Given x\n      | a | b |\n", "unsupported Gherkin"),
    ],
    ids=[
        "no-feature-first",
        "empty",
        "two-features",
        "step-outside-scenario",
        "free-text-after-step",
        "unclosed-docstring",
        "background",
        "outline",
        "tag",
        "table",
    ],
)
def test_unsupported_or_malformed_input_is_refused(text: str, message: str) -> None:
    with pytest.raises(GherkinError, match=message) as caught:
        parse_feature(text, "bad.feature")
    assert str(caught.value).startswith("bad.feature:")
