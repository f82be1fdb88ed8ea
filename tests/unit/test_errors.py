"""The exception tree is an interface: HTTP layers answer by class, callers catch by branch.

So the tree is locked here: which classes exist, where each one sits, and the status it
maps to. Moving a class, adding one or changing a status must change this table on
purpose.
"""

from __future__ import annotations

import inspect
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
