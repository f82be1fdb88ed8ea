"""The sync :class:`legato.Client` offers exactly what :class:`legato.AsyncClient` offers.

Every public method of one exists on the other with the same parameters (names, kinds,
defaults, annotations) and the same return annotation; the async methods are coroutine
functions and the sync ones are not. A method or an option added to one face only fails
here. There is one run handle (:class:`legato.RunHandle`, a plain record both return), so
no handle pair to compare.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

import legato

ASYNC, SYNC = legato.AsyncClient, legato.Client
# Entering and leaving differ by nature (``async with`` / ``with``); each face has its pair.
CONTEXT = {ASYNC: ("__aenter__", "__aexit__"), SYNC: ("__enter__", "__exit__")}


def public_methods(cls: type) -> dict[str, Callable[..., Any]]:
    """The class's public methods (its own and inherited ones), and its ``__init__``."""
    methods = {
        name: fn
        for name, fn in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }
    methods["__init__"] = cls.__init__
    return methods


def _text(annotation: Any) -> str:
    """An annotation as comparable text (both modules postpone annotations as strings)."""
    if annotation is inspect.Parameter.empty:
        return "<none>"
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return re.sub(r"\s+", "", text)


def _awaited(annotation: str) -> str:
    """``Awaitable[X]`` / ``Coroutine[Any, Any, X]`` -> ``X``: the only difference a return
    annotation of an async method may have from its sync twin's."""
    for wrapper in (
        r"^(?:typing\.|collections\.abc\.)?Awaitable\[(.*)\]$",
        r"^(?:typing\.|collections\.abc\.)?Coroutine\[Any,Any,(.*)\]$",
    ):
        match = re.match(wrapper, annotation)
        if match:
            return match.group(1)
    return annotation


def parameters(fn: Callable[..., Any]) -> list[tuple[str, str, str, str]]:
    return [
        (p.name, p.kind.name, repr(p.default), _text(p.annotation))
        for p in inspect.signature(fn).parameters.values()
    ]


def test_both_faces_have_the_same_public_methods() -> None:
    async_names, sync_names = set(public_methods(ASYNC)), set(public_methods(SYNC))
    assert not async_names - sync_names, f"only on AsyncClient: {async_names - sync_names}"
    assert not sync_names - async_names, f"only on Client: {sync_names - async_names}"


@pytest.mark.parametrize("name", sorted(public_methods(ASYNC)))
def test_each_method_has_the_same_signature_on_both_faces(name: str) -> None:
    async_fn, sync_fn = public_methods(ASYNC)[name], getattr(SYNC, name, None)
    assert sync_fn is not None, f"Client has no {name}"
    assert parameters(sync_fn) == parameters(async_fn), f"parameters of {name} differ"
    async_return = _text(inspect.signature(async_fn).return_annotation)
    sync_return = _text(inspect.signature(sync_fn).return_annotation)
    if name != "__init__":
        assert sync_return == _awaited(async_return), f"return of {name} differs"
        assert inspect.iscoroutinefunction(async_fn), f"AsyncClient.{name} is not async"
        assert not inspect.iscoroutinefunction(sync_fn), f"Client.{name} is async"
        assert sync_fn.__doc__ and async_fn.__doc__, f"{name} needs a docstring on both faces"


def test_each_face_has_its_context_manager() -> None:
    for cls, names in CONTEXT.items():
        for name in names:
            assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks {name}"


def test_the_comparison_notices_a_difference() -> None:
    """The check itself: a default, a kind or an annotation that differs is seen."""

    async def wait(self: Any, run_id: str, timeout: float | None = None) -> Any: ...

    def wait_other_default(self: Any, run_id: str, timeout: float | None = 1.0) -> Any: ...

    def wait_keyword(self: Any, run_id: str, *, timeout: float | None = None) -> Any: ...

    def wait_other_type(self: Any, run_id: str, timeout: int | None = None) -> Any: ...

    for other in (wait_other_default, wait_keyword, wait_other_type):
        assert parameters(other) != parameters(wait), other.__name__
    assert _awaited("Awaitable[list[RunRecord]]") == "list[RunRecord]"
    assert _awaited("Coroutine[Any,Any,int]") == "int"
