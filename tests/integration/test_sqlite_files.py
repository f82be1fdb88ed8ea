"""SQLite files Legato creates are private, and a SQLite URL says nothing it does not mean.

A workflow database holds inputs, results and errors: it was created 0644 (readable by
every user of the host), and so were its ``-wal`` and ``-shm`` files. ``?mode=ro`` and a
``#fragment`` were silently ignored, so a user who asked for read-only got read-write.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import legato
from legato.errors import ConfigurationError
from legato.store import open_store
from tests.helpers import run


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: the files' modes are Legato's choice, not the umask's."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@legato.workflow
async def hello(name: str) -> str:
    return f"hello {name}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_its_wal_and_shm_are_created_0600(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "private.db"

    async def body() -> None:
        async with legato.AsyncClient(f"sqlite:///{path}") as client:
            handle = await client.start(hello, "ann")
            assert (await client.get(handle.run_id)).workflow == "hello"
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files), [f.name for f in files if not f.exists()]
            assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}

    run(body)


def test_an_existing_database_keeps_its_mode(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)

    async def body() -> None:
        store = open_store(f"sqlite:///{path}")
        await store.open()
        await store.close()

    run(body)
    assert mode(path) == 0o640  # the owner chose it; Legato does not change it


@pytest.mark.parametrize(
    ("suffix", "message"),
    [
        ("?mode=ro", "unknown mode='ro'"),
        ("#main", "has a '#' part"),
        ("?journal=delete", "unknown option(s) journal"),
    ],
)
def test_an_option_legato_does_not_apply_is_refused(
    tmp_path: Path, suffix: str, message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}{suffix}"
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        open_store(url)
    assert not (tmp_path / "x.db").exists()  # refused before anything was created
