"""The PostgreSQL store's named statements (queries.sql)."""

from __future__ import annotations

from ..sqlfiles import load_queries

Q = load_queries(__package__ or "legato.store.postgres")
