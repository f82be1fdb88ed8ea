"""Bugs found reviewing issue 11's CLI work, each driven through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import legato_cli as legato

PASSWORD = "pw-s3cret"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{PASSWORD}@[::1/x",  # an IPv6 host never closed
        "sqlite://[::1/x.db",
    ],
)
@pytest.mark.parametrize("args", [["runs", "list"], ["db", "upgrade"], ["worker"]])
def test_a_url_python_cannot_parse_is_one_line_without_the_password(
    url: str, args: list[str], tmp_path: Path
) -> None:
    # It was a 60-line ValueError traceback ("Invalid IPv6 URL"), exit 1.
    done = subprocess.run(
        [sys.executable, "-m", "legato", "--db", url, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "LEGATO_DB"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("error: --db "), done.stderr
    assert PASSWORD not in done.stderr
    assert os.listdir(tmp_path) == []


def test_a_password_with_an_unencoded_at_sign_is_not_shown_in_part(tmp_path: Path) -> None:
    # postgresql://postgres:p@ss-...@host: libpq splits at the first "@", so its error named
    # the host 'ss-...@127.0.0.1', showing the password after its "@".
    url = f"postgresql://postgres:p@{PASSWORD}@127.0.0.1:5432/test"
    for args in (["runs", "list"], ["db", "upgrade"], ["worker"]):
        done = legato(url, *args, timeout=30)
        assert done.returncode != 0, (args, done.stderr)
        assert PASSWORD not in done.stderr + done.stdout, (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1, (args, done.stderr)
