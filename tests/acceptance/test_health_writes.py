"""``legato health`` fails when the database does not accept writes.

It used to read only, so it exited 0 on a full disk while every write failed. The disk
here is a real tmpfs of 4 MB, filled until SQLite cannot write; the read-only cases are
a database file without write permission and a PostgreSQL session that is read-only.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path

import psycopg

from tests.acceptance.conftest import fill
from tests.helpers import legato_cli

APP = Path(__file__).resolve().parents[1] / "apps" / "chaos.py"


def test_health_fails_on_a_full_disk(small_disk: Path) -> None:
    path = small_disk / "legato.db"
    db = f"sqlite:///{path}"
    assert legato_cli(db, "db", "upgrade").returncode == 0
    # A process using the database (a worker) keeps its -wal and -shm files in place.
    user = sqlite3.connect(path)
    try:
        user.execute("SELECT COUNT(*) FROM runs").fetchone()
        assert legato_cli(db, "health").returncode == 0  # the disk has room: ok
        fill(small_disk)
        started = legato_cli(db, "start", f"{APP}:five_steps", "--input", "[1, 0]")
        assert started.returncode == 1  # what every write meets now
        done = legato_cli(db, "health")
    finally:
        user.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "does not accept writes" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback


def test_health_fails_on_a_read_only_database_file(tmp_path: Path) -> None:
    path = tmp_path / "legato.db"
    db = f"sqlite:///{path}"
    assert legato_cli(db, "db", "upgrade").returncode == 0
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    tmp_path.chmod(stat.S_IRUSR | stat.S_IXUSR)  # no -wal/-shm may be created either
    try:
        if os.geteuid() == 0:  # root writes whatever the mode: make the file immutable
            subprocess.run(["chattr", "+i", str(path)], check=True)
        done = legato_cli(db, "health")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=False)
        tmp_path.chmod(stat.S_IRWXU)
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    assert done.returncode == 1, done.stdout + done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_health_fails_when_postgres_is_read_only(postgres_url: str) -> None:
    server, _, schema = postgres_url.partition("?schema=")
    role = f"ro_{schema}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'ALTER ROLE "{role}" SET default_transaction_read_only = on')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(
            f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'
        )
    try:
        read_only = postgres_url.replace("postgres@", f"{role}@", 1)
        done = legato_cli(read_only, "health")
        assert done.returncode == 1, done.stdout + done.stderr
        assert "read-only" in done.stderr
        assert legato_cli(postgres_url, "health").returncode == 0
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
