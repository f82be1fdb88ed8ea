"""What a blueprint run needs of the worker that runs it: the names its document calls.

A ``call:`` task runs a built-in protocol (``http``, ``openapi``), a function of
``use.functions`` or of a catalog (the document says how), or a name that only the
worker's app can supply: a registered Python function (``call: billing.charge``) or an
extension task kind (``call: acme:approve``). A run records those names when it starts
(the ``requires`` of its run record), and a worker claims it only if its app registers
them all, so a run is never taken by a worker that would fail it for lack of code.

The walk follows the task structure (``do``, ``for``, ``fork``, ``try``/``catch``,
``listen``/``foreach``, the tasks of ``use.functions``), so a ``call`` key inside a
task's data (an HTTP body, say) is never taken for a task. Legato's own task kinds
(``legato:...``) are served by every worker and never required. A function fetched at
run time (a catalog reference, a URL) cannot be known in advance and is not required.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .bindings import KIND_NAME
from .validation_calls import CALL_TYPES

OWN_NAMESPACE = "legato:"
"""Task kinds of this namespace are Legato's own: every worker has them."""


def required_capabilities(document: Mapping[str, Any]) -> tuple[str, ...]:
    """The Python functions and extension task kinds ``document`` calls, sorted."""
    use = document.get("use") or {}
    defined = use.get("functions") or {}
    found: set[str] = set()
    _task_list(document.get("do"), defined, found)
    if isinstance(defined, Mapping):
        for definition in defined.values():
            _task(definition, defined, found)
    return tuple(sorted(found))


def _task_list(items: Any, defined: Any, found: set[str]) -> None:
    if not isinstance(items, list):
        return
    for item in items:
        if isinstance(item, Mapping):
            for task in item.values():
                _task(task, defined, found)


def _task(task: Any, defined: Any, found: set[str]) -> None:
    if not isinstance(task, Mapping):
        return
    target = task.get("call")
    if isinstance(target, str):
        name = _required(target, defined)
        if name is not None:
            found.add(name)
    _task_list(task.get("do"), defined, found)  # do, and the body of a for loop
    _task_list(task.get("try"), defined, found)
    for key, inner in (("fork", "branches"), ("catch", "do"), ("foreach", "do")):
        part = task.get(key)
        if isinstance(part, Mapping):
            _task_list(part.get(inner), defined, found)


def _required(target: str, defined: Any) -> str | None:
    """The name a call needs from the worker's app, or None if the document supplies it
    (the same order of precedence as the interpreter's)."""
    if target in CALL_TYPES:
        return None
    if KIND_NAME.match(target):
        return None if target.startswith(OWN_NAMESPACE) else target
    if isinstance(defined, Mapping) and target in defined:
        return None
    if "@" in target or ":" in target or "://" in target:
        return None  # a catalog function or a definition at an address, fetched at run time
    return target
