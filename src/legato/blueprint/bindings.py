"""Python code a blueprint may call: custom functions and extension task kinds.

Both are registered in an app (:class:`legato.App`; these decorators use the default
app) under names a blueprint uses, and run on the workers serving that app:

* ``@legato.blueprint.function("name")``: ``call: name`` runs it as a journalled step with
  the task's ``with`` values as keyword arguments.
* ``@legato.blueprint.task_kind("acme:approve")``: ``call: acme:approve`` runs it inside
  the run, where it may use Legato's durable commands (steps, ``legato.sleep``,
  ``legato.wait_for_signal``, children). Kinds are namespaced ``<namespace>:<kind>`` so a
  kind never collides with a function name; the ``legato`` namespace is Legato's own.

An unknown kind is a validation error, never skipped.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..apps import DEFAULT_APP
from ..errors import ConfigurationError

F = TypeVar("F", bound=Callable[..., Any])

KIND_NAME = re.compile(r"^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class KindCall:
    """What an extension kind's handler receives for one task."""

    task: str  # the task's name
    reference: str  # its JSON pointer in the document, e.g. /do/2/approve
    arguments: dict[str, Any]  # the task's ``with``, expressions evaluated
    input: Any  # the task's input (after ``input.from``)
    timeout: float | None  # seconds left before the task (or an enclosing one) times out


@dataclass(frozen=True)
class TaskKind:
    """An extension task kind: its handler and the check of its ``with`` arguments."""

    name: str
    handler: Callable[[KindCall], Awaitable[Any]]
    check: Callable[[Any], list[str]]
    summary: str


def check_function_name(name: str) -> None:
    """Refuse a name a blueprint could not call as a function (``:`` names are kinds)."""
    if not name or KIND_NAME.match(name):
        raise ConfigurationError(
            f"function name {name!r}: use a plain name (names with ':' are task kinds)"
        )


def check_kind_name(name: str) -> None:
    """Refuse a task kind name that is not ``<namespace>:<kind>``."""
    if not KIND_NAME.match(name):
        raise ConfigurationError(
            f"task kind {name!r}: write it '<namespace>:<kind>' in lower case, e.g. 'acme:approve'"
        )


def make_task_kind(
    name: str,
    handler: Callable[[KindCall], Awaitable[Any]],
    check: Callable[[Any], list[str]] | None,
    summary: str,
) -> TaskKind:
    """A :class:`TaskKind`, once its handler is fit to be called from blueprints."""
    if not inspect.iscoroutinefunction(handler):
        raise ConfigurationError(f"task kind {name!r}: the handler must be 'async def'")
    return TaskKind(name, handler, check or (lambda _value: []), summary)


def function(name: str) -> Callable[[F], F]:
    """Make a Python callable callable from blueprints as ``call: <name>``.

    It runs as a step of the run (journalled, at-least-once, never again after it
    succeeded) and gets the task's ``with`` values as keyword arguments; its return value
    (JSON) is the task's output. An exception it raises becomes a DSL ``runtime`` error
    that a ``try`` can catch. This registers it in the default app
    (:data:`legato.apps.DEFAULT_APP`); ``@app.function(name)`` registers it in another.
    """
    return DEFAULT_APP.function(name)


def task_kind(
    name: str,
    *,
    check: Callable[[Any], list[str]] | None = None,
    summary: str = "",
) -> Callable[[Callable[[KindCall], Awaitable[Any]]], Callable[[KindCall], Awaitable[Any]]]:
    """Register an extension task kind ``<namespace>:<kind>`` (see the module docstring).

    ``check`` validates the task's ``with`` value when a blueprint is validated and
    returns problem messages (empty: fine). The handler is an ``async`` function taking a
    :class:`KindCall`; it runs in the workflow, so its side effects belong in steps.
    This registers it in the default app; ``@app.task_kind(name)`` in another.
    """
    return DEFAULT_APP.task_kind(name, check=check, summary=summary)


def functions() -> Mapping[str, Callable[..., Any]]:
    """Custom functions registered in the default app, by name."""
    return dict(DEFAULT_APP.functions)


def kinds() -> Mapping[str, TaskKind]:
    """Extension task kinds the default app's blueprints may call, by name."""
    return DEFAULT_APP.all_kinds()


def kind_checks() -> dict[str, Callable[[Any], list[str]]]:
    """The ``with`` check of every kind the default app knows (what validation needs)."""
    return DEFAULT_APP.kind_checks()
