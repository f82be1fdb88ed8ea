"""What a running step may use of the worker that runs it.

Steps are plain functions; a few built-in ones need the worker. A blueprint's ``emit``
acts through the worker's client (:func:`require_client`), like every other caller, so
an action has one path whoever takes it. Its ``listen`` and its lookups of published
documents are the engine's own reads and use the worker's store. The worker sets both for
each step it runs, so two workers in one process (as in tests) each hand steps their own.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

from ..store import Store

if TYPE_CHECKING:
    from ..client import AsyncClient

current_store: contextvars.ContextVar[Store | None] = contextvars.ContextVar(
    "legato_current_store", default=None
)
current_client: contextvars.ContextVar[AsyncClient | None] = contextvars.ContextVar(
    "legato_current_client", default=None
)


def require_store(what: str) -> Store:
    """The store of the worker running this step; RuntimeError outside a running step."""
    store = current_store.get()
    if store is None:
        raise RuntimeError(f"{what} needs a Legato worker: it can only run as a step of a run")
    return store


def require_client(what: str) -> AsyncClient:
    """The client of the worker running this step (over the worker's store, so a step's
    action costs no connection of its own); RuntimeError outside a running step."""
    client = current_client.get()
    if client is None:
        raise RuntimeError(f"{what} needs a Legato worker: it can only run as a step of a run")
    return client
