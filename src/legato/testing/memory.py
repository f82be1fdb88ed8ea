"""An in-memory database for tests: the same SQL as the SQLite store, nothing on disk.

``memory_url()`` names a fresh database that every store of this process opened with that
URL shares (a worker, clients, a second worker), with commits announced between them at
once. It is the SQLite backend running on SQLite's shared in-memory mode, not another
implementation, so a test that passes on it exercises the code production runs.
"""

from __future__ import annotations

import uuid

from ..store.sqlite.store import MEMORY, forget_memory


def memory_url(name: str | None = None) -> str:
    """A database URL for one test: ``sqlite:///:memory:NAME`` (a fresh name by default).

    The data lives until :func:`forget` (or the end of the process), so a client may
    close before the worker opens.
    """
    return f"sqlite:///{MEMORY}{name or uuid.uuid4().hex}"


def forget(url: str) -> None:
    """Drop the in-memory database of ``url`` and its data."""
    prefix = f"sqlite:///{MEMORY}"
    if not url.startswith(prefix):
        raise ValueError(f"{url!r} is not an in-memory database URL (see memory_url())")
    forget_memory(url[len(prefix) :])
