"""Small statement helpers shared by the PostgreSQL store's operations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import StoreError
from ...records import JournalEntry
from ..base import Lease
from ..rows import entry_params
from ..sqlfiles import load_queries
from .writer import Conn, Op

Q = load_queries(__package__ or "legato.store.postgres")


async def fetch_one(conn: Conn, name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    cur = await conn.execute(Q[name], params)
    return await cur.fetchone()


async def fetch_row(conn: Conn, name: str, params: dict[str, Any]) -> dict[str, Any]:
    row = await fetch_one(conn, name, params)
    if row is None:
        raise StoreError(f"query {name} found no row")
    return row


def lease_params(lease: Lease) -> dict[str, Any]:
    return {"run_id": lease.run_id, "owner": lease.owner, "epoch": lease.epoch}


async def holds(conn: Conn, lease: Lease) -> bool:
    return await fetch_one(conn, "check_lease", lease_params(lease)) is not None


async def upsert(conn: Conn, lease: Lease, entry: JournalEntry) -> bool:
    """Write a journal entry if ``lease`` still holds; False if it was fenced out."""
    cur = await conn.execute(Q["upsert_entry"], entry_params(lease, entry))
    return cur.rowcount == 1


def record_op(lease: Lease, entries: Sequence[JournalEntry]) -> Op:
    async def op(conn: Conn) -> bool:
        ok = True
        for entry in entries:
            written = await upsert(conn, lease, entry)
            ok = ok and written
        return ok

    return op
