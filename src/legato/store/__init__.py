"""Storage: the :class:`Store` and its backends, picked from the database URL."""

from __future__ import annotations

from urllib.parse import urlparse, urlunparse

from ..errors import ConfigurationError
from .base import Lease
from .core import Store

DEFAULT_URL = "sqlite:///legato.db"


def safe_url(url: str) -> str:
    """``url`` with its password replaced by ``***``: what a message may show of it."""
    try:
        parsed = urlparse(url)
        password = parsed.password
    except ValueError:  # not even a URL (a bad port, say): show its scheme only
        return url.split(":", 1)[0] + ":***" if ":" in url else url
    if not password:
        return url
    user, _, host = parsed.netloc.rpartition("@")
    name = user.split(":", 1)[0]
    return urlunparse(parsed._replace(netloc=f"{name}:***@{host}"))


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
        f"unsupported database URL scheme {scheme!r} in {safe_url(url)!r}: use "
        "sqlite:///path/to/file.db "
        "or postgresql://user@host/db"
    )


__all__ = ["DEFAULT_URL", "Lease", "Store", "open_store", "safe_url"]
