"""A small reader for the Gherkin feature files of an external conformance suite.

Only the part of Gherkin those files use is understood: ``Feature:`` with its free-text
description, ``Scenario:`` (or ``Example:``), steps (``Given``/``When``/``Then``/``And``/
``But``/``*``), doc strings between ``\"\"\"`` (or ``` ``` ```) with an optional content
type, comments and blank lines. Anything else (tags, ``Background``, outlines, data
tables, ``Rule``) raises :class:`GherkinError` rather than being skipped, so a suite
that starts using them fails loudly instead of losing steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STEP_KEYWORDS = ("Given", "When", "Then", "And", "But", "*")
SCENARIO_KEYWORDS = ("Scenario", "Example")
UNSUPPORTED_KEYWORDS = ("Background", "Scenario Outline", "Scenario Template", "Examples", "Rule")
DOCSTRING_DELIMITERS = ('"""', "```")


class GherkinError(ValueError):
    """A feature file uses syntax this reader does not understand."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line


@dataclass(frozen=True)
class Step:
    """One step: ``keyword`` as written (``And`` stays ``And``) and the text after it."""

    keyword: str
    text: str
    line: int
    docstring: str | None = None
    content_type: str | None = None  # e.g. "yaml" for a doc string opened with \"\"\"yaml


@dataclass(frozen=True)
class Scenario:
    name: str
    line: int
    description: str = ""
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Feature:
    name: str
    file: str
    description: str = ""
    scenarios: tuple[Scenario, ...] = ()


@dataclass
class _OpenScenario:
    """A scenario while its lines are still being read."""

    name: str
    line: int
    description: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def close(self) -> Scenario:
        return Scenario(self.name, self.line, "\n".join(self.description), tuple(self.steps))


def parse_feature(text: str, file: str = "<string>") -> Feature:
    """Parse the text of one ``.feature`` file (``file`` only names it in errors)."""
    lines = text.splitlines()
    feature_name: str | None = None
    feature_description: list[str] = []
    scenarios: list[Scenario] = []
    current: _OpenScenario | None = None
    index = 0
    while index < len(lines):
        number = index + 1
        stripped = lines[index].strip()
        index += 1
        if not stripped or stripped.startswith("#"):
            continue
        keyword, rest = _split_keyword(stripped)
        if keyword in UNSUPPORTED_KEYWORDS or stripped.startswith(("@", "|")):
            raise GherkinError(file, number, f"unsupported Gherkin syntax: {stripped!r}")
        if keyword == "Feature":
            if feature_name is not None:
                raise GherkinError(file, number, "a second 'Feature:' in one file")
            feature_name = rest
        elif feature_name is None:
            raise GherkinError(file, number, f"expected 'Feature:' first, found {stripped!r}")
        elif keyword in SCENARIO_KEYWORDS:
            if current is not None:
                scenarios.append(current.close())
            current = _OpenScenario(rest, number)
        elif current is None:
            if _step_keyword(stripped) is not None:
                raise GherkinError(file, number, f"step outside a scenario: {stripped!r}")
            feature_description.append(stripped)
        elif (step_keyword := _step_keyword(stripped)) is not None:
            step_text = stripped[len(step_keyword) :].strip()
            docstring, content_type, index = _read_docstring(lines, index, file)
            current.steps.append(Step(step_keyword, step_text, number, docstring, content_type))
        elif current.steps:
            raise GherkinError(file, number, f"expected a step keyword, found {stripped!r}")
        else:
            current.description.append(stripped)
    if feature_name is None:
        raise GherkinError(file, 1, "no 'Feature:' line")
    if current is not None:
        scenarios.append(current.close())
    return Feature(feature_name, file, "\n".join(feature_description), tuple(scenarios))


def _split_keyword(stripped: str) -> tuple[str | None, str]:
    """``("Scenario", "Name")`` for ``"Scenario: Name"``; ``(None, line)`` otherwise."""
    head, colon, rest = stripped.partition(":")
    if colon and head in ("Feature", *SCENARIO_KEYWORDS, *UNSUPPORTED_KEYWORDS):
        return head, rest.strip()
    return None, stripped


def _step_keyword(stripped: str) -> str | None:
    for keyword in STEP_KEYWORDS:
        if stripped == keyword or stripped.startswith(keyword + " "):
            return keyword
    return None


def _read_docstring(lines: list[str], index: int, file: str) -> tuple[str | None, str | None, int]:
    """The doc string starting at ``lines[index]`` (if any), and the index after it.

    Each content line loses as much leading whitespace as the opening delimiter is
    indented, so YAML inside keeps its own structure.
    """
    position = index
    while position < len(lines) and _is_comment_or_blank(lines[position]):
        position += 1
    if position == len(lines):
        return None, None, index
    opening = lines[position]
    stripped = opening.strip()
    delimiter = next((d for d in DOCSTRING_DELIMITERS if stripped.startswith(d)), None)
    if delimiter is None:
        return None, None, index
    indent = len(opening) - len(opening.lstrip())
    content_type = stripped[len(delimiter) :].strip() or None
    body: list[str] = []
    for end in range(position + 1, len(lines)):
        line = lines[end]
        if line.strip() == delimiter:
            return "\n".join(body), content_type, end + 1
        body.append(_dedent(line, indent))
    raise GherkinError(file, position + 1, f"doc string opened here is never closed ({delimiter})")


def _is_comment_or_blank(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _dedent(line: str, indent: int) -> str:
    """Drop up to ``indent`` leading whitespace characters, never any text."""
    width = len(line) - len(line.lstrip())
    return line[min(width, indent) :]
