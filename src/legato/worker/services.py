"""What a running step may use of the worker that runs it.

Steps are plain functions; a few built-in ones (a blueprint's ``emit``, its lookup of a
published sub-workflow) need the worker's store. The worker sets it for each step it
runs, so two workers in one process (as in tests) each hand steps their own store.
"""

from __future__ import annotations

import contextvars

from ..store import Store

current_store: contextvars.ContextVar[Store | None] = contextvars.ContextVar(
    "legato_current_store", default=None
)


def require_store(what: str) -> Store:
    """The store of the worker running this step; RuntimeError outside a running step."""
    store = current_store.get()
    if store is None:
        raise RuntimeError(f"{what} needs a Legato worker: it can only run as a step of a run")
    return store
