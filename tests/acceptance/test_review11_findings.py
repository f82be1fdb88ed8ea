"""Bugs found reviewing issue 11's CLI work, each driven through the real command."""

from __future__ import annotations

import json
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


APP = """
import legato

@legato.step
async def shout(text: str) -> str:
    raise ValueError(text)

@legato.workflow
async def greet(name: str) -> str:
    return f"hello {name}"

@legato.workflow
async def loud(text: str) -> str:
    return await shout(text)
"""
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x9b31m"  # set the title, clear the screen, CSI (C1)


def test_control_characters_in_run_ids_and_errors_are_shown_escaped(
    tmp_path: Path, db: str
) -> None:
    # They were written raw: `legato runs list` on a run id holding ESC [2J cleared the
    # user's screen, and set the terminal's title.
    app = tmp_path / "shop.py"
    app.write_text(APP)
    run_id = f"order{ESCAPES}1"
    answers = [
        legato(db, "run", f"{app}:greet", "--input", '"ann"', "--id", run_id),
        legato(db, "run", f"{app}:loud", "--input", json.dumps(f"bad {ESCAPES}"), "--id", "loud-1"),
        legato(db, "runs", "list"),
        legato(db, "runs", "show", run_id),
        legato(db, "runs", "show", "loud-1"),
        legato(db, "runs", "show", f"nosuch{ESCAPES}"),
        legato(db, "cancel", run_id),
    ]
    assert answers[0].returncode == 0, answers[0].stderr
    assert answers[1].returncode == 1, answers[1].stderr
    for done in answers:
        for char in "\x1b\x07\x9b":
            assert char not in done.stdout + done.stderr, (done.args, done.stdout, done.stderr)
    assert "order\\x1b]0;owned\\x07\\x1b[2J\\x9b31m1" in answers[2].stdout
    assert "\\x1b[2J" in answers[5].stderr
