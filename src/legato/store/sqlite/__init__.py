"""The embedded SQLite store (the default backend)."""

from .store import SQLiteStore

__all__ = ["SQLiteStore"]
