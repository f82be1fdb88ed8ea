"""Every bad input tried on the ``legato`` command, and what it answers: the table in
docs/cli.md ("Bad inputs") is this list's output, checked here so it stays true.

Each case runs in-process (``legato.cli.app.run_cli``: the same code path as the
command, without a new interpreter per case); a handful also run as the real ``legato``
command in a subprocess, which must answer exactly the same. Every answer is one line on
stderr, nothing on stdout, no traceback; usage errors exit 2, failed operations 1.

``LEGATO_UPDATE_DOCS=1 pytest tests/acceptance/test_cli_bad_inputs.py`` rewrites the
table after a deliberate change of a message.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from legato.cli.app import run_cli

DOC = Path(__file__).parents[2] / "docs" / "cli.md"
BEGIN, END = "<!-- bad-inputs:begin -->", "<!-- bad-inputs:end -->"
PASSWORD = "s3cret-pw"
APP = """
import legato

@legato.workflow
async def greet(name: str) -> str:
    return f"hello {name}"
"""

# (arguments after `legato`, exit code). The message is what the command prints.
CASES: list[tuple[list[str], int]] = [
    # the command line itself
    (["frobnicate"], 2),
    (["runs", "lis"], 2),
    (["runs", "list", "--db"], 2),
    (["--db", "", "runs", "list"], 2),
    (["--db", f"mysql://admin:{PASSWORD}@db.example/shop", "runs", "list"], 2),
    (["runs", "list", "--no-such-option"], 2),
    # counts and limits
    (["runs", "list", "--limit", "0"], 2),
    (["runs", "list", "--limit", "-5"], 2),
    (["runs", "list", "--limit", "many"], 2),
    (["runs", "list", "--status", "sleeping"], 2),
    (["runs", "list", "--workflow", ""], 2),
    (["run", "shop.py:greet", "--concurrency", "0"], 2),
    (["run", "shop.py:greet", "--id", ""], 2),
    (["run", "shop.py:greet", "--input", "{bad json"], 2),
    (["run", "shop.py:greet", "--input", "[NaN]"], 2),
    (["run", "shop.py:greet", "--input", "@digits.json"], 2),
    (["run", "shop.py:greet", "--input", "@deep.json"], 2),
    (["run", "shop.py:greet", "--input", "@missing.json"], 2),
    (["start", "shop.py:greet", "--id", ""], 2),
    (["start", "shop.py:greet", "--id", "   "], 2),
    (["start", "shop.py:greet", "--timeout", "-1"], 2),
    (["start", "shop.py:greet", "--timeout", "0"], 2),
    (["start", "shop.py:greet", "--timeout", "nan"], 2),
    (["start", "shop.py:greet", "--queue", ""], 2),
    (["start", "shop.py:greet", "--key", ""], 2),
    (["start", "shop.py:greet", "--priority", "high"], 2),
    (["start"], 2),
    (["worker", "--concurrency", "0"], 2),
    (["worker", "--lease", "0"], 2),
    (["worker", "--lease", "-3"], 2),
    (["worker", "--queue", ""], 2),
    (["worker", "--app", ""], 2),
    (["worker", "--max-recoveries", "-1"], 2),
    (["worker", "--evict-after", "-1"], 2),
    (["queues", "set", "payments", "--per", "0"], 2),
    (["queues", "set", "payments", "--rate", "5", "--per", "-1"], 2),
    (["queues", "set", "payments", "--per", "5"], 2),
    (["queues", "set", "payments", "--concurrency", "0"], 2),
    (["queues", "set", "payments", "--key-concurrency", "0"], 2),
    (["queues", "set", "payments", "--rate", "0"], 2),
    (["queues", "set", "", "--concurrency", "1"], 2),
    (["signal", "done-1", ""], 2),
    (["signal", "done-1", "go", "--data", "{oops"], 2),
    (["pause"], 2),
    (["pause", "--queue", "a", "--workflow", "b"], 2),
    (["pause", "--queue", "payments", "--timeout", "-1"], 2),
    (["resume"], 2),
    (["runs", "retry"], 2),
    (["runs", "retry", "done-1", "--workflow", "greet"], 2),
    (["runs", "retry", "--workflow", "greet", "--status", "completed"], 2),
    (["runs", "retry", "--workflow", "greet", "--since", "yesterday"], 2),
    (["runs", "reset", "done-1"], 2),
    (["runs", "reset", "done-1", "--to-step", ""], 2),
    (["workers", "list", "--dead-after", "0"], 2),
    (["health", "--max-age", "-1"], 2),
    (["blueprint", "run", "shop/order", "--timeout", "-1"], 2),
    (["blueprint", "run", "shop/order", "--id", ""], 2),
    (["events", "emit", "--type", "", "--source", "/shop"], 2),
    (["events", "emit", "--source", "/shop"], 2),
    # operations that fail
    (["run", "nope.py:greet"], 1),
    (["run", "shop.py"], 1),
    (["run", "shop.py:missing"], 1),
    (["run", "shop.py:greet", "--input", '{"name": 1}'], 1),
    (["runs", "show", "no-such-run"], 1),
    (["runs", "show", "order[eu]"], 1),
    (["runs", "show", "no-such-run", "--json"], 1),
    (["signal", "no-such-run", "go"], 1),
    (["cancel", "no-such-run"], 1),
    (["pause", "no-such-run"], 1),
    (["resume", "--queue", "nosuch"], 1),
    (["resume", "--workflow", "nosuch"], 1),
    (["runs", "retry", "--workflow", "nosuch"], 1),
    (["runs", "retry", "no-such-run"], 1),
    (["runs", "retry", "done-1"], 1),
    (["runs", "reset", "no-such-run", "--to-step", "1"], 1),
    (["history", "export", "no-such-run"], 1),
    (["blueprint", "show", "shop/nosuch"], 1),
    (["replay", "nosuch.json", "--app", "shop.py"], 1),
    (["health", "--require-worker"], 1),
    (["--db", "sqlite:///missing.db", "runs", "list"], 1),
    (["--db", "sqlite:///missing.db", "runs", "show", "done-1"], 1),
    (["--db", "sqlite:///missing.db", "health"], 1),
    (["--db", "sqlite:///missing.db", "workers", "list"], 1),
    (["--db", "sqlite:///missing.db", "queues", "list"], 1),
    (["--db", "sqlite:///missing.db", "paused"], 1),
    (["--db", "sqlite:///missing.db", "blueprint", "list"], 1),
    (["--db", "sqlite:///missing.db", "blueprint", "show", "shop/order"], 1),
    (["runs", "list", "--db", "sqlite:///no-folder/x.db"], 1),
    (
        [
            "--db",
            f"postgresql://postgres:{PASSWORD}@127.0.0.1/test?schema=bad-name",
            "runs",
            "list",
        ],
        1,
    ),
]
# These also run as the real command in a subprocess: the answers must be the same.
IN_SUBPROCESS = [
    ["runs", "list", "--limit", "0"],
    ["--db", f"mysql://admin:{PASSWORD}@db.example/shop", "runs", "list"],
    ["start", "shop.py:greet", "--timeout", "-1"],
    ["runs", "show", "order[eu]"],
    ["runs", "show", "no-such-run", "--json"],
    ["--db", "sqlite:///missing.db", "health"],
]


@pytest.fixture
def place(tmp_path: Path, db: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with an app (shop.py) and a database holding one completed run, done-1."""
    (tmp_path / "shop.py").write_text(APP)
    (tmp_path / "digits.json").write_text("[" + "9" * 5000 + "]")  # past Python's int limit
    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)  # past its recursion
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEGATO_DB", db)
    assert run_cli(["run", "shop.py:greet", "--input", '"ann"', "--id", "done-1"]) == 0
    return tmp_path


def _normalised(text: str, place: Path) -> str:
    return text.replace(str(place), "DIR").replace(socket.gethostname(), "HOST")


def _answer(args: list[str], place: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = run_cli(args)
    captured = capsys.readouterr()
    assert captured.out == "", f"{args}: printed on stdout: {captured.out!r}"
    lines = captured.err.splitlines()
    assert len(lines) == 1, f"{args}: expected one line on stderr, got {captured.err!r}"
    return code, _normalised(lines[0], place)


def _table(rows: list[tuple[list[str], int, str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| command | exit | message (stderr) |", "| --- | --- | --- |"]
    for args, code, message in rows:
        command = cell(shlex.join(["legato", *args]))
        lines.append(f"| `{command}` | {code} | {cell(message)} |")
    return "\n".join(lines)


def test_every_bad_input_gets_one_line_and_the_documented_exit_code(
    place: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(CASES) >= 40
    rows = []
    for args, expected in CASES:
        code, message = _answer(args, place, capsys)
        assert code == expected, f"legato {shlex.join(args)}: exit {code}: {message}"
        assert "Traceback" not in message and "╭" not in message
        assert PASSWORD not in message, f"legato {shlex.join(args)} shows the password"
        rows.append((args, code, message))
    table = _table(rows)
    doc = DOC.read_text()
    before, rest = doc.split(BEGIN)
    _, after = rest.split(END)
    if os.environ.get("LEGATO_UPDATE_DOCS"):
        DOC.write_text(f"{before}{BEGIN}\n{table}\n{END}{after}")
        rest = f"{table}{END}"
    documented = rest.split(END)[0].strip()
    assert documented == table, (
        "docs/cli.md's bad-input table is out of date: "
        "run LEGATO_UPDATE_DOCS=1 pytest tests/acceptance/test_cli_bad_inputs.py"
    )


def test_the_real_command_answers_the_same(
    place: Path, db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in IN_SUBPROCESS:
        code, message = _answer(args, place, capsys)
        done = subprocess.run(
            [sys.executable, "-m", "legato", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=place,
            env={**os.environ, "LEGATO_DB": db},
        )
        assert done.returncode == code, (args, done.stderr)
        assert done.stdout == ""
        assert [_normalised(line, place) for line in done.stderr.splitlines()] == [message]


def test_the_table_in_the_docs_has_a_row_per_case() -> None:
    documented = DOC.read_text().split(BEGIN)[1].split(END)[0]
    rows = [line for line in documented.splitlines() if re.match(r"\| `legato", line)]
    assert len(rows) == len(CASES) >= 40
