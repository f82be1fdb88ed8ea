"""The exception tree is an interface: HTTP layers answer by class, callers catch by branch.

So the tree is locked here: which classes exist, where each one sits, and the status it
maps to. Moving a class, adding one or changing a status must change this table on
purpose, and with it the table in docs/api.md and the tree in legato.errors, which are
checked against the classes too.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import legato
from legato import errors
from legato.cli.loader import load_workflow
from legato.runtime.replay import History

# name -> (HTTP status, its legato ancestors in method resolution order)
EXPECTED: dict[str, tuple[int, tuple[str, ...]]] = {
    "LegatoError": (500, ()),
    "InvalidInput": (400, ("LegatoError",)),
    "PayloadError": (400, ("InvalidInput", "LegatoError")),
    "BlueprintInvalid": (400, ("InvalidInput", "LegatoError")),
    "NotFound": (404, ("LegatoError",)),
    "RunNotFound": (404, ("NotFound", "LegatoError")),
    "BlueprintNotFound": (404, ("NotFound", "LegatoError")),
    "WorkflowNotFound": (404, ("NotFound", "LegatoError")),
    "Conflict": (409, ("LegatoError",)),
    "RunEnded": (409, ("Conflict", "LegatoError")),
    "RunChanged": (409, ("Conflict", "LegatoError")),
    "Unavailable": (503, ("LegatoError",)),
    "ConfigurationError": (500, ("LegatoError",)),
    "SchemaError": (500, ("ConfigurationError", "LegatoError")),
    "RunFailed": (422, ("LegatoError",)),
    "StepCancelled": (409, ("LegatoError",)),
    "WorkflowError": (500, ("LegatoError",)),
    "StepError": (500, ("WorkflowError", "LegatoError")),
    "ChildRunError": (500, ("WorkflowError", "LegatoError")),
    "WaitTimeout": (500, ("WorkflowError", "LegatoError")),
    "StepTimeout": (500, ("WorkflowError", "LegatoError")),
    "StepInterrupted": (500, ("WorkflowError", "LegatoError")),
    "NonDeterminismError": (500, ("WorkflowError", "LegatoError")),
    "BlueprintFault": (500, ("WorkflowError", "LegatoError")),
    "ExpressionError": (500, ("BlueprintFault", "WorkflowError", "LegatoError")),
}

ALIASES = {"StoreError": "Unavailable"}
"""Old names kept so existing ``except`` clauses go on working: the very same class."""

BUILTIN_BASES = {"WaitTimeout": TimeoutError, "StepTimeout": TimeoutError}
"""Classes that are also a built-in exception, so ``except TimeoutError`` catches them."""

SAMPLE_ARGS: dict[str, tuple[Any, ...]] = {
    "RunNotFound": ("r1",),
    "BlueprintInvalid": (["a.yaml:1:1 /do: required"],),
    "RunFailed": ("r1", "failed", {"type": "ValueError", "message": "no"}),
    "StepError": ("charge", "ValueError", "no", 3),
    "ChildRunError": ("c1", "failed", None),
    "BlueprintFault": ({"type": "x", "status": 400, "title": "X"},),
    "ExpressionError": ("bad jq",),
}
"""Constructor arguments of the classes that do not take just a message."""

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def walk(cls: type[BaseException]) -> set[type[BaseException]]:
    """``cls`` and every subclass of it, recursively, that Legato itself defines."""
    found = {cls}
    for sub in cls.__subclasses__():
        if sub.__module__.split(".")[0] == "legato":
            found |= walk(sub)
    return found


def legato_ancestry(cls: type) -> tuple[str, ...]:
    return tuple(c.__name__ for c in cls.__mro__[1:] if c.__module__.split(".")[0] == "legato")


def sample(name: str) -> BaseException:
    cls = getattr(errors, name)
    instance: BaseException = cls(*SAMPLE_ARGS.get(name, ("something went wrong",)))
    return instance


def test_the_tree_holds_exactly_the_expected_classes_all_in_legato_errors() -> None:
    tree = walk(errors.LegatoError)
    assert {cls.__name__ for cls in tree} == set(EXPECTED)
    for cls in tree:
        assert cls.__module__ == "legato.errors", f"{cls.__name__} belongs in legato.errors"
        assert getattr(errors, cls.__name__) is cls
        assert cls.__doc__, f"{cls.__name__} has no docstring"


def test_every_class_maps_to_its_status() -> None:
    for name, (status, _ancestry) in EXPECTED.items():
        assert getattr(errors, name).http_status == status, name


def test_every_class_sits_where_the_table_says() -> None:
    for name, (_status, ancestry) in EXPECTED.items():
        assert legato_ancestry(getattr(errors, name)) == ancestry, name


def test_built_in_bases_are_deliberate() -> None:
    common = {object, BaseException, Exception}
    for name in EXPECTED:
        cls = getattr(errors, name)
        builtin = {c for c in cls.__mro__ if c.__module__ == "builtins"} - common
        expected = BUILTIN_BASES.get(name)
        assert builtin == (set(expected.__mro__) - common if expected else set()), name


def test_old_names_are_the_same_class() -> None:
    for old, new in ALIASES.items():
        assert getattr(errors, old) is getattr(errors, new)


def test_http_status_of_instances() -> None:
    for name, (status, _ancestry) in EXPECTED.items():
        assert errors.http_status(sample(name)) == status, name
    assert errors.http_status(errors.StoreError("database unreachable")) == 503
    assert errors.http_status(ValueError("not Legato's")) == 500
    assert errors.http_status(errors.LeaseLost("r1")) == 500


def test_lease_lost_stays_outside_the_tree() -> None:
    assert not issubclass(errors.LeaseLost, Exception)
    assert legato_ancestry(errors.LeaseLost) == ()


def test_every_exported_exception_is_in_the_table() -> None:
    exported = {
        name
        for name in legato.__all__
        if inspect.isclass(getattr(legato, name))
        and issubclass(getattr(legato, name), BaseException)
    }
    assert exported <= set(EXPECTED) | set(ALIASES)
    for name in exported:
        assert getattr(legato, name) is getattr(errors, name)


# -- the documentation says the same ------------------------------------------------------
def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    return text[start : end if end != -1 else len(text)]


def docs_table() -> dict[str, int]:
    """``class -> status`` from the table in "Errors and HTTP statuses" of docs/api.md."""
    rows: dict[str, int] = {}
    for line in section(
        DOCS.read_text(encoding="utf-8"), "## Errors and HTTP statuses"
    ).splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 4, f"docs/api.md: a row needs 4 cells: {line}"
        name = re.fullmatch(r"`(\w+)`", cells[0])
        assert name is not None, f"docs/api.md: the first cell names one class: {line}"
        assert name[1] not in rows, f"docs/api.md: {name[1]} is listed twice"
        rows[name[1]] = int(cells[1])
        assert cells[2] and cells[3], f"docs/api.md: say when and what to do: {line}"
    return rows


def drawn_tree(text: str) -> dict[str, tuple[str | None, int | None]]:
    """``class -> (parent, status or None)`` from a tree drawn with ├── └── │ lines.

    The tree starts at the line ``LegatoError`` and ends at a blank line or a code fence.
    """
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith("LegatoError"))
    indent = len(lines[first]) - len(lines[first].lstrip())
    found: dict[str, tuple[str | None, int | None]] = {}
    path: list[str] = []
    for line in lines[first:]:
        if not line.strip() or line.startswith("```"):
            break
        drawn = re.match(r"([│├└─ ]*)([A-Z]\w*)(?:\s+(\d{3})\b)?", line[indent:])
        assert drawn is not None, f"not a line of the tree: {line!r}"
        depth = len(drawn[1]) // 4
        del path[depth:]
        found[drawn[2]] = (path[-1] if path else None, int(drawn[3]) if drawn[3] else None)
        path.append(drawn[2])
    return found


def test_the_docs_table_gives_every_class_its_status() -> None:
    table = docs_table()
    assert set(table) == set(EXPECTED) | set(ALIASES)
    for name, status in table.items():
        assert getattr(errors, name).http_status == status, f"docs/api.md: {name}"


@pytest.mark.parametrize(
    "where, text",
    [
        ("docs/api.md", section(DOCS.read_text(encoding="utf-8"), "## Errors and HTTP statuses")),
        ("legato.errors", errors.__doc__ or ""),
    ],
)
def test_the_drawn_trees_match_the_classes(where: str, text: str) -> None:
    tree = drawn_tree(text)
    assert set(tree) == set(EXPECTED), where
    for name, (parent, status) in tree.items():
        ancestry = EXPECTED[name][1]
        assert parent == (ancestry[0] if ancestry else None), f"{where}: {name}"
        assert status in (None, getattr(errors, name).http_status), f"{where}: {name}"


# -- where they are raised ------------------------------------------------------------------
def test_bad_input_and_unknown_names_are_told_apart_from_bad_settings(tmp_path: Path) -> None:
    with legato.Client(f"sqlite:///{tmp_path / 'legato.db'}") as client:
        with pytest.raises(errors.InvalidInput, match="pause/resume one thing"):
            client.pause("r1", workflow="wf")
        with pytest.raises(errors.InvalidInput, match="concurrency must be at least 1"):
            client.set_queue("default", concurrency=0)
    with pytest.raises(errors.InvalidInput, match=r"expected FILE\.py:WORKFLOW"):
        load_workflow("app.py")
    with pytest.raises(errors.InvalidInput, match="cannot read history file"):
        History.load(tmp_path / "missing.json")
    (tmp_path / "history.json").write_text('{"format": "legato-history/9"}')
    with pytest.raises(errors.InvalidInput, match=r"history\.json: history format"):
        History.load(tmp_path / "history.json")
    app = tmp_path / "errors_app.py"
    app.write_text("import legato\n")
    with pytest.raises(errors.WorkflowNotFound, match="has no workflow named 'missing'"):
        load_workflow(f"{app}:missing")
    with pytest.raises(errors.ConfigurationError, match="no such file"):
        load_workflow(f"{tmp_path / 'nowhere.py'}:wf")
