"""Upgrading a database made by an earlier Legato, on SQLite and PostgreSQL.

For every schema version below the newest (read from the migration files, so a new
migration is covered without editing this module), a database is built as the Legato of
that version left it, with a run in it. The test upgrades it, reads the run back, and
checks that the upgraded schema is the one a fresh database gets: tables, columns,
indexes and constraints, as each backend's catalog describes them.
"""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from legato.records import EntryStatus, RunStatus
from legato.store import open_store
from legato.store.sqlfiles import load_migrations, split_statements
from tests.helpers import run

PACKAGES = {"sqlite": "legato.store.sqlite", "postgres": "legato.store.postgres"}
MIGRATIONS_TABLE = {
    # As each store has created it since schema version 1: an old database has this one.
    "sqlite": "CREATE TABLE schema_migrations "
    "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)",
    "postgres": "CREATE TABLE schema_migrations "
    "(version integer PRIMARY KEY, applied_at double precision NOT NULL)",
}
# Written with the columns of schema version 1 only, so they fit a database of any version.
OLD_ROWS = [
    "INSERT INTO runs (run_id, workflow, status, created_at, updated_at) "
    "VALUES ('old', 'wf', 'pending', 1, 1)",
    "INSERT INTO journal (run_id, seq, kind, name, status, output) "
    "VALUES ('old', '1', 'step', 'fetch', 'completed', '42')",
]


def versions(backend: str) -> list[int]:
    return [version for version, _ in load_migrations(PACKAGES[backend])]


OLD_VERSIONS = [(b, v) for b in PACKAGES for v in versions(b)[:-1]]


def old_statements(backend: str, upto: int) -> list[str]:
    """What the Legato of schema version ``upto`` ran on an empty database, plus the rows
    it stored."""
    statements = [MIGRATIONS_TABLE[backend]]
    for version, script in load_migrations(PACKAGES[backend]):
        if version <= upto:
            statements.extend(split_statements(script))
            statements.append(f"INSERT INTO schema_migrations VALUES ({version}, {time.time()})")
    return [*statements, *OLD_ROWS]


@pytest.fixture
def postgres_schemas(postgres_server: str) -> Iterator[list[str]]:
    """Names of schemas a test creates (append to the list); dropped afterwards."""
    made: list[str] = []
    yield made
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for schema in made:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def sqlite_database(path: Path, statements: list[str]) -> str:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()
    return f"sqlite:///{path}"


def postgres_database(server: str, schemas: list[str], statements: list[str]) -> str:
    schema = f"m_{uuid.uuid4().hex[:12]}"
    schemas.append(schema)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'SET search_path TO "{schema}"')
        with conn.transaction():
            for statement in statements:
                conn.execute(statement)
    return f"{server}?schema={schema}"


def fresh_database(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, name: str = "fresh"
) -> str:
    """An empty database upgraded to the newest schema, as a new installation gets it."""
    if backend == "sqlite":
        url = sqlite_database(tmp_path / f"{name}.db", [])
    else:
        server = request.getfixturevalue("postgres_server")
        url = postgres_database(server, request.getfixturevalue("postgres_schemas"), [])
    run(open_store(url).upgrade)
    return url


def old_database(backend: str, version: int, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    statements = old_statements(backend, version)
    if backend == "sqlite":
        return sqlite_database(tmp_path / f"v{version}.db", statements)
    server = request.getfixturevalue("postgres_server")
    return postgres_database(server, request.getfixturevalue("postgres_schemas"), statements)


# -- reading a schema from the catalog -------------------------------------------------------


def schema_of(url: str) -> dict[str, Any]:
    """The database's schema as plain data, equal for equal schemas whichever way they
    were made (no object ids, no schema names)."""
    if url.startswith("sqlite:///"):
        return sqlite_schema(url.removeprefix("sqlite:///"))
    server, _, schema = url.rpartition("?schema=")
    return postgres_schema(server, schema)


def _squeeze(sql: str | None) -> str | None:
    return None if sql is None else " ".join(sql.split())


def _checks(table_sql: str) -> list[str]:
    """The CHECK expressions in a CREATE TABLE statement (SQLite keeps them nowhere else)."""
    found = []
    for match in re.finditer(r"\bCHECK\s*\(", table_sql, re.IGNORECASE):
        depth, start = 0, match.end() - 1
        for end in range(start, len(table_sql)):
            depth += {"(": 1, ")": -1}.get(table_sql[end], 0)
            if depth == 0:
                found.append(" ".join(table_sql[start + 1 : end].split()))
                break
    return sorted(found)


def sqlite_schema(path: str) -> dict[str, Any]:
    conn = sqlite3.connect(path)
    try:
        master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        index_sql = {name: sql for kind, name, _, sql in master if kind == "index"}
        tables: dict[str, Any] = {}
        for kind, name, _, sql in master:
            if kind != "table":
                continue
            columns = conn.execute(
                'SELECT name, type, "notnull", dflt_value, pk, hidden '
                "FROM pragma_table_xinfo(?) ORDER BY cid",
                (name,),
            ).fetchall()
            indexes = {}
            for index, unique, origin, partial in conn.execute(
                'SELECT name, "unique", origin, partial FROM pragma_index_list(?)', (name,)
            ).fetchall():
                keys = conn.execute(
                    'SELECT name, "desc", coll FROM pragma_index_xinfo(?) '
                    "WHERE key = 1 ORDER BY seqno",
                    (index,),
                ).fetchall()
                definition = _squeeze(index_sql.get(index))
                where = None
                if partial and definition:
                    where = re.split(r"\bWHERE\b", definition, maxsplit=1, flags=re.I)[1].strip()
                indexes[index] = {
                    "columns": keys,
                    "unique": bool(unique),
                    "origin": origin,  # c: CREATE INDEX, u: UNIQUE, pk: PRIMARY KEY
                    "where": where,
                }
            foreign_keys: dict[int, list[Any]] = {}
            for fk_id, _seq, target, source, to, on_update, on_delete, match in conn.execute(
                "SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq", (name,)
            ).fetchall():
                foreign_keys.setdefault(fk_id, [target, [], on_update, on_delete, match])
                foreign_keys[fk_id][1].append((source, to))
            tables[name] = {
                "columns": columns,
                "indexes": indexes,
                "foreign_keys": sorted(repr(fk) for fk in foreign_keys.values()),
                "checks": _checks(sql or ""),
                "autoincrement": "AUTOINCREMENT" in (sql or "").upper(),
            }
        others = {
            f"{kind} {name}": _squeeze(sql)
            for kind, name, _, sql in master
            if kind in ("view", "trigger")
        }
        return {"tables": tables, "other": others}
    finally:
        conn.close()


def postgres_schema(server: str, schema: str) -> dict[str, Any]:
    def unqualified(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(f'"{schema}".', "").replace(f"{schema}.", "")
        return value

    def rows(sql: str) -> list[tuple[Any, ...]]:
        found = conn.execute(sql, {"schema": schema}).fetchall()
        return [tuple(unqualified(v) for v in row) for row in found]

    with psycopg.connect(server, options=f"-c search_path={schema}") as conn:
        tables: dict[str, Any] = {
            name: {"type": kind, "columns": [], "indexes": {}, "constraints": {}}
            for name, kind in rows(
                "SELECT table_name, table_type FROM information_schema.tables "
                "WHERE table_schema = %(schema)s"
            )
        }
        for table, *column in rows(
            "SELECT table_name, column_name, data_type, udt_name, character_maximum_length, "
            "numeric_precision, is_nullable, column_default, is_identity, "
            "identity_generation, is_generated, generation_expression, collation_name "
            "FROM information_schema.columns WHERE table_schema = %(schema)s "
            "ORDER BY table_name, ordinal_position"
        ):
            tables[table]["columns"].append(tuple(column))
        for table, index, unique, primary, columns, where, definition in rows(
            "SELECT t.relname, c.relname, i.indisunique, i.indisprimary, "
            "ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true) "
            "      FROM generate_series(1, i.indnkeyatts) AS k ORDER BY k)::text, "
            "pg_get_expr(i.indpred, i.indrelid, true), x.indexdef "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "JOIN pg_indexes x ON x.schemaname = n.nspname AND x.indexname = c.relname "
            "WHERE n.nspname = %(schema)s"
        ):
            tables[table]["indexes"][index] = {
                "columns": columns,
                "unique": unique,
                "primary": primary,
                "where": where,
                "definition": definition,
            }
        for table, constraint, kind, definition in rows(
            "SELECT t.relname, con.conname, con.contype::text, pg_get_constraintdef(con.oid) "
            "FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid "
            "JOIN pg_namespace n ON n.oid = con.connamespace WHERE n.nspname = %(schema)s"
        ):
            tables[table]["constraints"][constraint] = (kind, definition)
        others = {
            f"sequence {name}": rest
            for name, *rest in rows(
                "SELECT sequence_name, data_type, start_value, minimum_value, maximum_value, "
                "increment, cycle_option FROM information_schema.sequences "
                "WHERE sequence_schema = %(schema)s"
            )
        }
        for name, definition in rows(
            "SELECT tg.tgname, pg_get_triggerdef(tg.oid) FROM pg_trigger tg "
            "JOIN pg_class t ON t.oid = tg.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
            "WHERE n.nspname = %(schema)s AND NOT tg.tgisinternal"
        ):
            others[f"trigger {name}"] = [definition]
        for name, definition in rows(
            "SELECT table_name, view_definition FROM information_schema.views "
            "WHERE table_schema = %(schema)s"
        ):
            others[f"view {name}"] = [definition]
        for name, kind, definition in rows(
            "SELECT p.proname, p.prokind::text, "
            "CASE WHEN p.prokind IN ('f', 'p') THEN pg_get_functiondef(p.oid) END "
            "FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(schema)s"
        ):
            others[f"routine {name}"] = [kind, definition]
        return {"tables": tables, "other": others}


def differences(found: Any, expected: Any, path: str = "") -> list[str]:
    """Where ``found`` differs from ``expected``, one line per place, named by its path
    (``tables.runs.indexes.runs_pending.where``)."""
    if isinstance(found, dict) and isinstance(expected, dict):
        lines = []
        for key in sorted(found.keys() | expected.keys(), key=str):
            at = f"{path}.{key}" if path else str(key)
            if key not in expected:
                lines.append(f"{at}: only in the upgraded database")
            elif key not in found:
                lines.append(f"{at}: missing from the upgraded database")
            else:
                lines.extend(differences(found[key], expected[key], at))
        return lines
    if found != expected:
        return [f"{path}: upgraded {found!r}, fresh {expected!r}"]
    return []


# -- the tests -------------------------------------------------------------------------------


def test_both_backends_know_the_same_schema_versions() -> None:
    assert versions("sqlite") == versions("postgres")
    assert OLD_VERSIONS, "no earlier schema version to upgrade from"


@pytest.mark.parametrize(
    ("backend", "version"), OLD_VERSIONS, ids=[f"{b}-from-v{v}" for b, v in OLD_VERSIONS]
)
def test_an_old_database_upgrades_to_the_fresh_schema_and_keeps_its_runs(
    backend: str, version: int, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = old_database(backend, version, request, tmp_path)
    known = versions(backend)

    async def body() -> None:
        store = open_store(url)
        assert await store.upgrade() == [v for v in known if v > version]
        assert await store.upgrade() == []  # once only
        await store.open()
        try:
            old = await store.get_run("old")
            assert old is not None and old.status is RunStatus.PENDING
            # the columns added since, filled in with their defaults for existing runs
            assert (old.queue, old.priority, old.concurrency_key) == ("default", 0, None)
            assert (old.paused, old.redrives, old.detached, old.deadline_at) == (
                False,
                0,
                False,
                None,
            )
            assert old.recoveries == 0
            (entry,) = await store.get_journal("old")
            assert (entry.name, entry.status, entry.output) == (
                "fetch",
                EntryStatus.COMPLETED,
                "42",
            )
            assert (entry.attempt_log, entry.progress) == (None, None)
            (claimed,) = await store.claim_runs("w1", 10, 2.0, 2.0, 15, ["wf"])
            assert claimed.run.run_id == "old" and claimed.run.recoveries == 0
        finally:
            await store.close()

    run(body)
    fresh = fresh_database(backend, request, tmp_path)
    found = differences(schema_of(url), schema_of(fresh))
    assert not found, f"upgraded from version {version}:\n" + "\n".join(found)


SCHEMA_CHANGES = {
    "sqlite": [
        "ALTER TABLE runs ADD COLUMN extra TEXT CHECK (extra <> '') REFERENCES workers (worker_id)",
        "DROP INDEX runs_owner",
        "CREATE INDEX runs_owner ON runs (owner) WHERE status = 'waiting'",
        "CREATE UNIQUE INDEX runs_unique_workflow ON runs (workflow)",
    ],
    "postgres": [
        "ALTER TABLE runs ALTER COLUMN priority SET DEFAULT 1",
        "ALTER TABLE runs ALTER COLUMN concurrency_key SET NOT NULL",
        "ALTER TABLE runs ADD CONSTRAINT runs_priority_positive CHECK (priority >= 0)",
        "ALTER TABLE journal ADD FOREIGN KEY (run_id) REFERENCES runs (run_id)",
        "DROP INDEX runs_owner",
        "CREATE INDEX runs_owner ON runs (owner) WHERE status = 'waiting'",
        "CREATE UNIQUE INDEX runs_unique_workflow ON runs (workflow)",
    ],
}
SEEN_CHANGES = {
    "sqlite": [
        "tables.runs.columns",
        "tables.runs.checks",
        "tables.runs.foreign_keys",
        "tables.runs.indexes.runs_owner.where",
        "tables.runs.indexes.runs_unique_workflow: only in the upgraded database",
    ],
    "postgres": [
        "tables.runs.columns",  # the default and the nullability
        "tables.runs.constraints.runs_priority_positive: only in the upgraded database",
        "tables.journal.constraints.journal_run_id_fkey: only in the upgraded database",
        "tables.runs.indexes.runs_owner.where",
        "tables.runs.indexes.runs_unique_workflow: only in the upgraded database",
    ],
}


@pytest.mark.parametrize("backend", list(PACKAGES))
def test_the_schema_comparison_sees_each_kind_of_difference(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The comparison above passes only if it can fail: an added column (on PostgreSQL a
    changed default and nullability), a check, a foreign key, an index's WHERE and a new
    unique index each show up."""
    fresh = fresh_database(backend, request, tmp_path)
    changed = fresh_database(backend, request, tmp_path, "changed")
    if backend == "sqlite":
        sqlite_database(Path(changed.removeprefix("sqlite:///")), SCHEMA_CHANGES[backend])
    else:
        server, _, schema = changed.rpartition("?schema=")
        with psycopg.connect(server, options=f"-c search_path={schema}") as conn:
            for statement in SCHEMA_CHANGES[backend]:
                conn.execute(statement)
    found = "\n".join(differences(schema_of(changed), schema_of(fresh)))
    for expected in SEEN_CHANGES[backend]:
        assert expected in found, found
    assert not differences(schema_of(fresh), schema_of(fresh))
