"""What the ``legato`` command prints: data exactly as it is (no markup read into it),
plain columns off a terminal, times with their zone, one JSON shape, the help and the
version, and what a failure says (where it was raised, what was undone, where to look).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.helpers import legato_cli as legato

APP = """
import legato

@legato.step
def echo(value: dict) -> dict:
    return value

@legato.workflow
async def keep(value: dict) -> dict:
    return await echo(value)

@legato.step
def release(order: dict) -> None:
    pass

@legato.step(compensate=release)
def reserve(order: dict) -> str:
    return "reserved"

@legato.step(retry=legato.Retry(max_attempts=1))
def check(order: dict) -> None:
    raise ValueError("field [customer_id] is missing")

@legato.workflow
async def place(order: dict) -> None:
    await reserve(order)
    await check(order)
"""
RAISING_LINE = next(n for n, line in enumerate(APP.splitlines(), 1) if "raise Value" in line)


@pytest.fixture
def app(tmp_path: Path) -> str:
    path = tmp_path / "shop.py"
    path.write_text(APP)
    return str(path)


def test_brackets_in_data_ids_and_errors_are_shown_as_they_are(db: str, app: str) -> None:
    done = legato(
        db, "run", f"{app}:keep", "--input", '{"a": "[b]", "c": ":smile:"}', "--id", "k[1]"
    )
    assert done.returncode == 0, done.stderr
    assert '"a": "[b]"' in done.stdout and ":smile:" in done.stdout
    assert "run k[1] of keep started" in done.stdout
    journal = legato(db, "runs", "show", "k[1]").stdout
    assert '"[b]"' in journal and ":smile:" in journal  # the journal's cells
    started = legato(db, "start", f"{app}:keep", "--input", '{"a": "[b]"}', "--id", "order[eu]")
    assert started.stdout.strip() == "order[eu]"
    shown = legato(db, "runs", "show", "order[eu]")
    assert shown.returncode == 0, shown.stderr
    assert "run order[eu]" in shown.stdout
    assert "order[eu]" in legato(db, "runs", "list").stdout
    failed = legato(db, "run", f"{app}:place", "--input", "{}", "--id", "p[1]")
    assert failed.returncode == 1
    assert "field [customer_id] is missing" in failed.stderr
    shown = legato(db, "runs", "show", "p[1]")
    assert "field [customer_id] is missing" in shown.stdout
    run = json.loads(legato(db, "runs", "show", "order[eu]", "--json").stdout)
    assert run["input"] == [[{"a": "[b]"}], {}]  # the arguments, as stored


def test_without_psycopg_the_install_hint_keeps_its_brackets(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None; "
        "from legato.cli.app import main; sys.argv = ['legato', 'runs', 'list']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LEGATO_DB": "postgresql://postgres@127.0.0.1/test"},
    )
    assert done.returncode == 1
    assert "pip install 'legato[postgres]'" in done.stderr


def test_a_failed_run_shows_where_it_was_raised_and_what_was_undone(db: str, app: str) -> None:
    failed = legato(db, "run", f"{app}:place", "--input", '{"id": 7}', "--id", "order-7")
    assert failed.returncode == 1
    assert "legato runs show order-7" in failed.stderr
    shown = legato(db, "runs", "show", "order-7")
    assert f"raised at {app}:{RAISING_LINE} in check" in shown.stdout
    assert "compensations that ran (1):" in shown.stdout
    assert re.search(r"release of step reserve \(#\d+\): completed", shown.stdout)


def test_output_off_a_terminal_is_plain_columns_with_zoned_times(db: str, app: str) -> None:
    long_id = "a-run-id-much-longer-than-any-column-would-be-" + "x" * 150
    assert legato(db, "run", f"{app}:keep", "--input", "{}", "--id", long_id).returncode == 0
    listing = legato(db, "runs", "list")
    assert not set(listing.stdout) & set("│┃─━┏┓┗┛╭╮╰╯"), listing.stdout
    assert "\x1b[" not in listing.stdout
    header, row = listing.stdout.splitlines()
    assert header.split() == ["run", "id", "workflow", "status", "created", "duration"]
    assert row.startswith(long_id + "  ")  # the whole id, on one line
    created = row.split()[3]
    assert datetime.fromisoformat(created).utcoffset() is not None, created
    shown = legato(db, "runs", "show", long_id)
    assert long_id in shown.stdout and "╭" not in shown.stdout and "│" not in shown.stdout


def test_runs_list_says_when_more_runs_exist_than_it_shows(db: str, app: str) -> None:
    for i in range(3):
        legato(db, "start", f"{app}:keep", "--input", "{}", "--id", f"r{i}")
    two = legato(db, "runs", "list", "--limit", "2", "--json")
    assert len(two.stdout.splitlines()) == 2
    assert "showing the newest 2 of 3 runs" in two.stderr
    every = legato(db, "runs", "list", "--limit", "3")
    assert every.stderr == ""


def test_every_read_command_has_json_in_one_shape(db: str, app: str) -> None:
    """Lists are JSON Lines (one object a line), one thing is one object."""
    legato(db, "start", f"{app}:keep", "--input", "{}", "--id", "j1")
    legato(db, "queues", "set", "payments", "--concurrency", "2")
    legato(db, "pause", "--queue", "payments", "--no-wait")
    for args in (
        ["runs", "list"],
        ["queues", "list"],
        ["paused"],
        ["workers", "list"],
        ["blueprint", "list"],
    ):
        done = legato(db, *args, "--json")
        assert done.returncode == 0, (args, done.stderr)
        assert all(isinstance(json.loads(line), dict) for line in done.stdout.splitlines())
    assert json.loads(legato(db, "paused", "--json").stdout)["name"] == "payments"
    for args in (["runs", "show", "j1"], ["health"]):
        done = legato(db, *args, "--json")
        assert isinstance(json.loads(done.stdout), dict), (args, done.stdout)
    missing = legato(db, "runs", "show", "nope", "--json")
    assert missing.returncode == 1
    error = json.loads(missing.stderr)["error"]
    assert error["type"] == "RunNotFound" and error["exit_code"] == 1
    bad = legato(db, "runs", "list", "--limit", "0", "--json")
    assert bad.returncode == 2 and json.loads(bad.stderr)["error"]["exit_code"] == 2


def test_help_version_and_global_options_after_the_command(db: str, tmp_path: Path) -> None:
    version = legato(db, "--version")
    assert version.returncode == 0 and re.fullmatch(r"legato \S+\n", version.stdout)
    top = legato(db, "-h")
    assert top.returncode == 0 and "Durable workflows on SQLite" not in top.stdout
    assert "workflow orchestration" in top.stdout
    for args in (["runs", "list"], ["worker"], ["run"], ["pause"], ["queues", "set"]):
        shown = legato(db, *args, "-h")
        assert shown.returncode == 0 and "Usage: legato" in shown.stdout
        assert "<bool>" not in shown.stdout, shown.stdout
        options = [line for line in shown.stdout.splitlines() if line.startswith("  -")]
        assert options and not [o for o in options if "<" in o], options  # no <int>, <float>
        assert "╭" not in shown.stdout
    other = f"sqlite:///{tmp_path / 'other.db'}"
    legato(db, "--db", other, "db", "upgrade")
    legato(db, "queues", "set", "only-in-other", "--concurrency", "1", "--db", other)
    after = legato(db, "queues", "list", "--json", "--db", other)
    assert [json.loads(line)["name"] for line in after.stdout.splitlines()] == ["only-in-other"]
    assert legato(db, "queues", "list", "--json").stdout == ""


def test_usage_errors_are_one_line_with_exit_2(db: str) -> None:
    for args in (["runs", "list", "--limit", "x"], ["frobnicate"], ["start"]):
        done = legato(db, *args)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("error: ")
        assert "╭" not in done.stderr and done.stdout == ""
