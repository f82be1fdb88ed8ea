"""Creating and checking the PostgreSQL schema (``legato db upgrade``)."""

from __future__ import annotations

import logging
import time

from ...errors import SchemaError
from ..sqlfiles import load_migrations, pending_migrations
from .writer import Conn

log = logging.getLogger(__name__)


async def migrate(conn: Conn, schema: str, shown_url: str, apply: bool) -> list[int]:
    """Apply pending migrations (``apply``) or check that none is pending."""
    applied: list[int] = []
    async with conn.transaction():
        known = load_migrations(__package__ or "legato.store.postgres")
        newest = known[-1][0]
        if not apply:
            cur = await conn.execute("SELECT to_regclass('schema_migrations') AS t")
            found = await cur.fetchone()
            done: set[int] = set()
            if found and found["t"]:
                cur = await conn.execute("SELECT version FROM schema_migrations")
                done = {r["version"] for r in await cur.fetchall()}
            if not done or max(done) < newest:
                at = f"is at version {max(done)}" if done else "has no Legato tables"
                raise SchemaError(
                    f"{shown_url} {at}; this Legato needs version {newest}: "
                    f"run `legato --db '{shown_url}' db upgrade`"
                )
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('legato-migrate'))")
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, applied_at double precision NOT NULL)"
        )
        cur = await conn.execute("SELECT version FROM schema_migrations")
        done = {r["version"] for r in await cur.fetchall()}
        for version, statements in pending_migrations(known, done, shown_url):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES (%s, %s)", (version, time.time())
            )
            log.info("applied schema migration %d to %s", version, shown_url)
            applied.append(version)
    return applied
