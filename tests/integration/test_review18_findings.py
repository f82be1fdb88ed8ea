"""Findings of the review of the hardening round (issue 18): each test failed before its fix.

* a run whose document was validated under a raised limit failed on replay in a worker
  with the default limits (its document was checked against them again);
* a mapping key that is not a string (``1:``, ``~:``, ``!!int 0x1f:``) beside string keys
  crashed ``load_blueprint`` with TypeError (the digest sorts keys);
* a ``"\\U00110000"`` escape crashed ``load_blueprint`` with ValueError from PyYAML;
* a namespace read another namespace's own secret by naming ``<rest>__<name>``:
  namespace ``team`` declaring ``payments__token`` read ``LEGATO_SECRET_TEAM__PAYMENTS__TOKEN``,
  the own secret ``token`` of namespace ``team--payments``;
* the SQLite writer's group without savepoints ran on in autocommit after SQLite had
  rolled the whole transaction back (disk full): later ops of the group committed while
  reported failed.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import legato
from legato.blueprint import Blueprint, load_blueprint
from legato.blueprint.document import parse_trusted
from legato.errors import BlueprintInvalid
from legato.store.ops import Sql
from legato.store.sqlite.connection import Conn, Writer
from tests.helpers import run, running_worker

HEAD = "document: {dsl: '1.0.0', namespace: a, name: b, version: '1.0.0'}\n"


def big_document() -> str:
    padding = "# " + "x" * 300_000 + "\n"  # over the default 262,144 bytes
    return (
        "document: {dsl: '1.0.3', namespace: review, name: big, version: '1.0.0'}\n"
        + padding
        + "do:\n  - answer:\n      set:\n        n: 42\n"
    )


def test_a_run_validated_under_a_raised_limit_replays_under_the_default_ones(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = big_document()
    monkeypatch.setenv("LEGATO_BLUEPRINT_MAX_BYTES", "1000000")
    doc = load_blueprint(text, "big.yaml")
    monkeypatch.delenv("LEGATO_BLUEPRINT_MAX_BYTES")
    parse_trusted.cache_clear()

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(doc, None)
            record = await client.wait(handle.run_id, timeout=60)
            assert record.status is legato.RunStatus.COMPLETED, record.error
            assert json.loads(record.output or "null") == {"n": 42}

    run(body)


def test_a_published_document_parses_as_trusted_under_the_default_limits() -> None:
    parse_trusted.cache_clear()
    assert parse_trusted(big_document(), "big.yaml").name == "big"


@pytest.mark.parametrize(
    "body",
    [
        "do:\n- t:\n    set:\n      1: a\n      b: c\n",
        "do:\n- t:\n    set:\n      ~: a\n      b: c\n",
        "do:\n- t:\n    set:\n      true: a\n      b: c\n",
        "!!int 0x1f: 1\ndo: []\n",
        "!!null '': 1\ndo: []\n",
        "1.5: x\ndo: []\n",
    ],
)
def test_a_key_that_is_not_a_string_gives_a_blueprint_or_blueprint_invalid(body: str) -> None:
    try:
        loaded = load_blueprint(HEAD + body, "t.yaml")
    except BlueprintInvalid as exc:
        assert all("\n" not in str(p) and str(p).startswith("t.yaml:") for p in exc.problems)
    else:
        assert isinstance(loaded, Blueprint)
        assert all(isinstance(k, str) for k in loaded.document["do"][0]["t"]["set"])


def test_keys_are_the_text_written() -> None:
    loaded = load_blueprint(HEAD + "do:\n- t:\n    set:\n      1: a\n      b: c\n", "t.yaml")
    assert loaded.document["do"][0]["t"]["set"] == {"1": "a", "b": "c"}


def test_an_escape_beyond_unicode_is_one_positioned_problem() -> None:
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint(HEAD + 'x: "\\U00110000"\ndo: []\n', "t.yaml")
    (problem,) = caught.value.problems
    assert str(problem).startswith("t.yaml:2:")
    assert "an escape past \\U0010FFFF names no Unicode character" in str(problem)


def reader(namespace: str, secret: str) -> str:
    return f"""
document: {{dsl: '1.0.3', namespace: {namespace}, name: reader, version: '1.0.0'}}
use:
  secrets: ['{secret}']
do:
  - peek:
      set:
        got: '${{ $secrets["{secret}"] }}'
"""


SECRET = "payments-own-token-5512"


@pytest.mark.parametrize("name", ["payments__token", "payments--token", "payments..token"])
def test_a_namespace_cannot_name_its_way_into_a_longer_namespaces_own_secret(
    name: str, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``team--payments``'s own ``token`` is LEGATO_SECRET_TEAM__PAYMENTS__TOKEN, which is
    also what namespace ``team`` naming ``payments__token`` would read as its own."""
    monkeypatch.setenv("LEGATO_SECRET_TEAM__PAYMENTS__TOKEN", SECRET)
    assert load_blueprint(reader("team--payments", "token")).namespace == "team--payments"
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint(reader("team", name))
    assert SECRET not in str(caught.value)

    assert "cannot be used" in str(caught.value)
    # A run of such a document (validated by an earlier Legato) is refused at its start.
    doc = parse_trusted(reader("team", name))

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(doc, None)
            record = await client.wait(handle.run_id, timeout=60)
            journal = await client.journal(handle.run_id)
            stored = json.dumps([record.output, record.error, [e.output for e in journal]])
            assert SECRET not in stored  # the value never reached the run
            assert record.status is legato.RunStatus.FAILED
            assert "cannot be used" in (record.error or "")

    run(body)


def test_sqlite_writer_group_is_not_continued_after_sqlite_rolled_it_back(
    tmp_path: Path,
) -> None:
    """A full database (max_page_count here, a full disk in production) can make SQLite
    roll the whole transaction back; the ops after the failing one must not then run in
    autocommit, committing while the group reports them failed."""
    path = tmp_path / "full.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE big (x)")
    setup.execute("CREATE TABLE small (x)")
    setup.close()

    def connect() -> Conn:
        conn = sqlite3.connect(path, isolation_level=None, factory=Conn, check_same_thread=False)
        conn.execute("PRAGMA max_page_count = 20")
        return conn

    def execute(conn: Conn, sql: Sql) -> Any:
        return conn.execute(sql.name, dict(sql.params)).rowcount

    def too_big() -> Any:
        yield Sql("INSERT INTO big VALUES (:x)", {"x": b"x" * 200_000}, "count")

    def small() -> Any:
        yield Sql("INSERT INTO small VALUES (1)", {}, "count")

    async def body() -> list[Any]:
        writer = Writer(connect, execute, lambda notices: None)
        # Queue both before the thread starts, so they form one group.
        loop = asyncio.get_running_loop()
        futures = []
        for call in (too_big, small):
            fut = loop.create_future()
            writer._queue.put((call, fut, False))
            futures.append(fut)
        writer.start()
        try:
            return await asyncio.gather(*futures, return_exceptions=True)
        finally:
            await asyncio.to_thread(writer.stop)

    outcomes = run(body)
    assert isinstance(outcomes[0], Exception)  # the database is full
    check = sqlite3.connect(path)
    (rows,) = check.execute("SELECT count(*) FROM small").fetchone()
    check.close()
    reported_ok = not isinstance(outcomes[1], BaseException)
    assert rows == (1 if reported_ok else 0), (outcomes, rows)
