"""Storage: the :class:`Store` and its backends, picked from the database URL."""

from __future__ import annotations

from ..errors import ConfigurationError
from .base import Lease
from .core import Store

DEFAULT_URL = "sqlite:///legato.db"


def open_store(url: str) -> Store:
    """Make (not yet open) the store for ``url``.

    ``sqlite:///path/file.db`` (the default, one machine) or
    ``postgresql://user@host:5432/db[?schema=name]`` (many workers on many hosts).
    """
    if url.startswith("sqlite:"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql:", "postgres:")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    scheme = url.split(":", 1)[0] if ":" in url else url
    raise ConfigurationError(
        f"unsupported database URL scheme {scheme!r} in {url!r}: use sqlite:///path/to/file.db "
        "or postgresql://user@host/db"
    )


__all__ = ["DEFAULT_URL", "Lease", "Store", "open_store"]
