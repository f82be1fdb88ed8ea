"""The real ``legato`` command serves what it waits on: ``legato run`` serves the queues its
workflow and the routed steps of its file use (and ``--queue``), ``legato blueprint run``
runs a published blueprint or a draft file here when no live worker can, showing its
steps, and a command waiting on a run no live worker can serve says so within seconds,
naming the command that starts one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import legato_cli as legato

PAYMENTS = """\
import legato


@legato.workflow(queue="payments")
async def charge(amount: int) -> int:
    return amount * 100
"""

ROUTED = """\
import legato


@legato.step(queue="gpu")
def render(n: int) -> int:
    return n * 2


@legato.workflow
async def picture(n: int) -> int:
    return await render(n)
"""

SIDE = """\
import legato


@legato.step(queue="side")
def lookup(n: int) -> int:
    return n + 1
"""

USES_SIDE = """\
import legato
from side_steps import lookup


@legato.workflow
async def uses_side(n: int) -> int:
    return await lookup(n)
"""

HEAD = "document: {dsl: '1.0.3', namespace: tests, name: NAME, version: '1.0.0'}\n"
GREETER = HEAD.replace("NAME", "greeter") + (
    "do:\n  - greet:\n      set:\n        message: '${ \"hello \" + .name }'\n"
)


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def test_run_serves_the_queue_of_its_workflow(db: str, tmp_path: Path) -> None:
    app = write(tmp_path, "payments_app.py", PAYMENTS)
    done = legato(db, "run", f"{app}:charge", "--input", "3", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["status"] == "completed" and record["output"] == 300
    assert record["queue"] == "payments"


def test_run_serves_the_queues_of_the_routed_steps_its_file_defines(
    db: str, tmp_path: Path
) -> None:
    app = write(tmp_path, "routed_app.py", ROUTED)
    done = legato(db, "run", f"{app}:picture", "--input", "4", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == 8


def test_a_run_nobody_serves_is_named_within_seconds_and_queue_serves_it(
    db: str, tmp_path: Path
) -> None:
    write(tmp_path, "side_steps.py", SIDE)
    app = write(tmp_path, "uses_side.py", USES_SIDE)
    # The routed step lives in another file, on a queue the embedded worker does not
    # serve: the command says so on stderr (and keeps waiting, as the run does).
    waiting = subprocess.Popen(
        [sys.executable, "-m", "legato", "run", f"{app}:uses_side", "--input", "1"],
        env={**os.environ, "LEGATO_DB": db, "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert waiting.stderr is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and "step:lookup" not in line:
            line = waiting.stderr.readline()
        assert "warning: no live worker can execute run " in line, line
        assert ", which it waits for (" in line
        assert "workflow step:lookup, queue side" in line
        assert f"start one: legato worker --app {app} --queue side" in line
    finally:
        waiting.terminate()
        waiting.communicate(timeout=30)
    done = legato(
        db, "run", f"{app}:uses_side", "--input", "5", "--queue", "side", "--json", timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == 6
    assert "warning" not in done.stderr


def test_blueprint_run_with_no_worker_runs_it_here_and_shows_its_steps(
    db: str, tmp_path: Path
) -> None:
    published = legato(db, "blueprint", "publish", write(tmp_path, "greeter.yaml", GREETER))
    assert published.returncode == 0, published.stderr
    done = legato(db, "blueprint", "run", "tests/greeter", "--input", '{"name": "ann"}', timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"message": "hello ann"}
    assert "no live worker can execute it: running it here" in done.stderr
    assert "✓" in done.stderr and "/do/0/greet" in done.stderr  # the step, as it ended


def test_blueprint_run_validates_and_runs_a_draft_file_without_publishing_it(
    db: str, tmp_path: Path
) -> None:
    draft = write(tmp_path, "greeter.yaml", GREETER)
    done = legato(db, "blueprint", "run", draft, "--input", '{"name": "bob"}', timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["message"] == "hello bob"
    assert f"draft tests/greeter:1.0.0 ({draft})" in done.stderr
    listed = legato(db, "blueprint", "list", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() == ""  # nothing was published

    broken = write(tmp_path, "broken.yaml", HEAD.replace("NAME", "broken") + "do: 3\n")
    refused = legato(db, "blueprint", "run", broken, timeout=60)
    assert refused.returncode == 1
    assert "broken.yaml:" in refused.stderr and "nothing was run" in refused.stderr
    runs = legato(db, "runs", "list", "--json")
    assert len(runs.stdout.splitlines()) == 1  # only bob's run


def test_a_draft_may_not_run_a_shell_command_even_when_its_namespace_is_allowed(
    db: str, tmp_path: Path
) -> None:
    marker = tmp_path / "shell-ran"
    text = HEAD.replace("NAME", "shelly") + (
        f"do:\n  - touch:\n      run:\n        shell:\n          command: 'touch {marker}'\n"
    )
    draft = write(tmp_path, "shelly.yaml", text)
    env = {**os.environ, "LEGATO_DB": db, "LEGATO_BLUEPRINT_PROCESSES": "tests/*"}
    done = subprocess.run(
        [sys.executable, "-m", "legato", "blueprint", "run", draft],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 1
    assert "runs only from published blueprints" in done.stderr
    assert not marker.exists()


def test_blueprint_run_says_when_no_worker_has_what_the_run_requires(
    db: str, tmp_path: Path
) -> None:
    text = HEAD.replace("NAME", "needs") + "do:\n  - work:\n      call: acme.work\n"
    draft = write(tmp_path, "needs.yaml", text)
    done = legato(db, "blueprint", "run", draft, "--timeout", "8", timeout=60)
    assert done.returncode == 1
    assert "warning: no live worker can execute it (workflow blueprint:tests/needs" in done.stderr
    assert "legato worker --app FILE.py --queue default (an app that registers acme.work)" in (
        done.stderr
    )
    assert "still pending after 8 s" in done.stderr
