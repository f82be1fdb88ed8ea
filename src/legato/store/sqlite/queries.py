"""Named SQL for the SQLite store, read from ``queries.sql`` and ``migrations/``."""

from __future__ import annotations

from ..sqlfiles import load_migrations, load_queries


def migrations() -> list[tuple[int, str]]:
    """(version, script) for every migration, in order."""
    return load_migrations(__package__ or "legato.store.sqlite")


Q = load_queries(__package__ or "legato.store.sqlite")
