"""The examples in README.md and the guides run as written, and CHANGELOG.md keeps its form.

Each test takes the code and the commands out of the Markdown (so a doc edit is what is
tested) and runs them with the real ``legato`` command against a temporary SQLite file.
The only change made to them: a URL on the internet becomes a server on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import legato
from tests.helpers import legato_cli
from tests.servers import LocalServer

ROOT = Path(__file__).parents[2]


def blocks(markdown: Path, language: str) -> list[str]:
    """The fenced code blocks of one language, in order."""
    text = markdown.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def block_starting(markdown: Path, language: str, first_line: str) -> str:
    (found,) = [b for b in blocks(markdown, language) if b.startswith(first_line + "\n")]
    return found


def commands(block: str) -> list[list[str]]:
    """The ``legato`` commands of a console block, as argument lists (comments dropped;
    a trailing ``&`` means "in the background" and is dropped too)."""
    found = []
    for line in block.splitlines():
        if line.startswith("$ legato "):
            words = shlex.split(line[2:], comments=True)
            found.append([w for w in words if w != "&"][1:])
    return found


@contextmanager
def background(db: str, cwd: Path, args: list[str]) -> Iterator[subprocess.Popen[str]]:
    """``legato ARGS`` running in ``cwd`` until the block ends (then stopped gracefully)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "legato", *args],
        cwd=cwd,
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr


def legato_in(db: str, cwd: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "legato", *args],
        cwd=cwd,
        env={**os.environ, "LEGATO_DB": db, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done


def test_the_readme_sample_runs_as_written(tmp_path: Path) -> None:
    readme = ROOT / "README.md"
    (tmp_path / "app.py").write_text(block_starting(readme, "python", "# app.py"))
    console = next(b for b in blocks(readme, "console") if "app.py:fulfil" in b)
    worker, start, signal, show = commands(console)
    assert worker[0] == "worker" and start[0] == "start" and signal[0] == "signal"
    db = f"sqlite:///{tmp_path / 'readme.db'}"
    with background(db, tmp_path, worker):
        legato_in(db, tmp_path, start)
        run_id = start[start.index("--id") + 1]
        legato_in(db, tmp_path, signal)
        with legato.Client(db) as client:
            ended = client.wait(run_id, timeout=120)
    assert ended.status is legato.RunStatus.COMPLETED, ended.error
    assert json.loads(ended.output or "null") == ("payment 1-1250, shipped by DHL, invoice 1")
    shown = legato_in(db, tmp_path, show)
    assert "charge" in shown.stdout and "completed" in shown.stdout


def test_the_first_blueprint_example_passes_the_order_to_its_function(tmp_path: Path) -> None:
    guide = ROOT / "docs" / "blueprints.md"
    document = block_starting(guide, "yaml", "# order.yaml")
    functions = block_starting(guide, "python", "# billing.py")
    console = next(b for b in blocks(guide, "console") if "order.yaml" in b)
    db = f"sqlite:///{tmp_path / 'blueprint.db'}"
    with LocalServer() as server:
        # The echo endpoint answers any method and path under /anything.
        local = document.replace("https://stock.example.com", f"{server.url}/anything")
        assert local != document
        (tmp_path / "order.yaml").write_text(local)
        (tmp_path / "billing.py").write_text(functions)
        steps = commands(console)
        validate, publish, worker, start = steps[:4]
        assert worker[0] == "worker" and start[:2] == ["blueprint", "run"]
        legato_in(db, tmp_path, validate)
        legato_in(db, tmp_path, publish)
        with background(db, tmp_path, worker):
            legato_in(db, tmp_path, start)
            with legato.Client(db) as client:
                (record,) = client.list()
                ended = client.wait(record.run_id, timeout=120)
                journal = client.journal(record.run_id)
        assert server.hits["/anything/reservations"] == 1
    assert ended.status is legato.RunStatus.COMPLETED, ended.error
    (charge,) = [e for e in journal if e.name == "/do/1/charge"]
    recorded = json.loads(charge.output or "null")  # a task's step records {"value": ...}
    assert recorded["value"] == {"order": "o-1", "charged": True}


def test_the_routed_step_example_runs_on_two_workers(tmp_path: Path) -> None:
    guide = ROOT / "docs" / "flow-control.md"
    (tmp_path / "app.py").write_text(block_starting(guide, "python", "# app.py"))
    console = next(b for b in blocks(guide, "console") if "app.py:movie" in b)
    default, gpu, start, show = commands(console)
    assert "--queue" in gpu and "--queue" not in default
    db = f"sqlite:///{tmp_path / 'routed.db'}"
    legato_cli(db, "db", "upgrade")
    with background(db, tmp_path, default), background(db, tmp_path, gpu):
        legato_in(db, tmp_path, start)
        with legato.Client(db) as client:
            ended = client.wait("movie-1", timeout=120)
    assert ended.status is legato.RunStatus.COMPLETED, ended.error
    assert json.loads(ended.output or "null") == [
        "frames/0000.png",
        "frames/0001.png",
        "frames/0002.png",
    ]
    assert "frames/0000.png" in legato_in(db, tmp_path, show).stdout


SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed", "Security")


def test_the_changelog_is_in_keep_a_changelog_form() -> None:
    """``## [Unreleased]`` first, then released versions (``## [1.2.0] - 2026-01-31``),
    each with at most one of each Keep a Changelog section; what Legato is (the durable
    core, its stores, its CLI) is listed as added, not as fixed."""
    text = (ROOT / "CHANGELOG.md").read_text()
    versions = re.split(r"^## ", text, flags=re.M)[1:]
    assert versions and versions[0].startswith("[Unreleased]\n")
    for version in versions[1:]:
        assert re.match(r"\[\d+\.\d+\.\d+\] - \d{4}-\d{2}-\d{2}\n", version), version[:40]
    for version in versions:
        names = re.findall(r"^### (.+)$", version, flags=re.M)
        assert names and set(names) <= set(SECTIONS), names
        assert len(names) == len(set(names)), f"a section repeated: {names}"
        assert [n for n in SECTIONS if n in names] == names, f"out of order: {names}"
    unreleased = versions[0]
    sections = dict(re.findall(r"^### (\w+)\n(.*?)(?=^### |\Z)", unreleased, flags=re.S | re.M))
    for feature in ("Durable execution core", "PostgreSQL store", "Embedded SQLite store"):
        assert feature in sections["Added"], feature
        assert feature not in sections.get("Fixed", ""), feature


def test_the_demo_runs_as_make_demo_runs_it(tmp_path: Path) -> None:
    """``make demo``: examples/demo.py, then ``legato runs show`` of its order (the demo
    once imported a helper the CLI had renamed, and only ``make demo`` noticed)."""
    examples = tmp_path / "examples"
    examples.mkdir()
    for name in ("demo.py", "order_fulfilment.py", "order.json"):
        (examples / name).write_text((ROOT / "examples" / name).read_text())
    done = subprocess.run(
        [sys.executable, "demo.py"], cwd=examples, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done" in done.stdout and '"invoice"' in done.stdout
    shown = legato_cli(f"sqlite:///{examples / 'demo.db'}", "runs", "show", "order-1001")
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout
