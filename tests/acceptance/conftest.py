"""What the CLI tests share: a SQLite database per test.

The database file exists (empty) before the test starts, as it would once a worker or
`legato db upgrade` has run: read commands refuse to create one (see
test_cli_database.py for a missing file).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "cli.db"
    sqlite3.connect(path).close()
    assert path.is_file()
    return f"sqlite:///{path}"
