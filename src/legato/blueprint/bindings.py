"""Python code a blueprint may call: custom functions and extension task kinds.

Both are registered by the application a worker imports, under names a blueprint uses:

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


_functions: dict[str, Callable[..., Any]] = {}
_kinds: dict[str, TaskKind] = {}


def function(name: str) -> Callable[[F], F]:
    """Make a Python callable callable from blueprints as ``call: <name>``.

    It runs as a step of the run (journalled, at-least-once, never again after it
    succeeded) and gets the task's ``with`` values as keyword arguments; its return value
    (JSON) is the task's output. An exception it raises becomes a DSL ``runtime`` error
    that a ``try`` can catch.
    """
    if not name or KIND_NAME.match(name):
        raise ConfigurationError(
            f"function name {name!r}: use a plain name (names with ':' are task kinds)"
        )

    def register(fn: F) -> F:
        _check_unique(name, fn, _functions.get(name), "function")
        _functions[name] = fn
        return fn

    return register


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
    """
    if not KIND_NAME.match(name):
        raise ConfigurationError(
            f"task kind {name!r}: write it '<namespace>:<kind>' in lower case, e.g. 'acme:approve'"
        )

    def register(
        handler: Callable[[KindCall], Awaitable[Any]],
    ) -> Callable[[KindCall], Awaitable[Any]]:
        if not inspect.iscoroutinefunction(handler):
            raise ConfigurationError(f"task kind {name!r}: the handler must be 'async def'")
        existing = _kinds.get(name)
        _check_unique(name, handler, existing.handler if existing else None, "task kind")
        _kinds[name] = TaskKind(name, handler, check or (lambda _value: []), summary)
        return handler

    return register


def _check_unique(name: str, new: Any, existing: Any, what: str) -> None:
    """Two different callables under one name is a mistake; re-importing a module is not."""
    if existing is None or existing is new:
        return
    origin = (getattr(new, "__module__", None), getattr(new, "__qualname__", None))
    if origin != (getattr(existing, "__module__", None), getattr(existing, "__qualname__", None)):
        raise ConfigurationError(
            f"two {what}s are registered as {name!r} ({existing.__module__}."
            f"{existing.__qualname__} and {new.__module__}.{new.__qualname__}): rename one"
        )


def functions() -> Mapping[str, Callable[..., Any]]:
    """Custom functions registered in this process, by name."""
    return dict(_functions)


def kinds() -> Mapping[str, TaskKind]:
    """Extension task kinds registered in this process, by name."""
    return dict(_kinds)


def kind_checks() -> dict[str, Callable[[Any], list[str]]]:
    """The ``with`` check of every registered kind (what validation needs)."""
    return {name: kind.check for name, kind in _kinds.items()}
