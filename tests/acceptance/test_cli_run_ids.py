"""The real ``legato`` command refuses a run id that names another run: another
workflow's (``run``, ``start``, ``blueprint run``) or the same workflow's with other input,
unless ``--attach`` asks for the run that is there; the same start again resumes it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import legato_cli as legato

SIGNUP = """\
import legato


@legato.workflow
async def signup(name: str) -> str:
    return f"welcome {name}"
"""

OTHER = """\
import legato


@legato.workflow
async def noargs() -> str:
    return "nothing"
"""


def apps(folder: Path) -> tuple[str, str]:
    (folder / "signup_app.py").write_text(SIGNUP)
    (folder / "other_app.py").write_text(OTHER)
    return str(folder / "signup_app.py"), str(folder / "other_app.py")


def shown(db: str, run_id: str) -> dict[str, object]:
    result = legato(db, "runs", "show", run_id, "--json")
    assert result.returncode == 0, result.stderr
    record: dict[str, object] = json.loads(result.stdout)
    return record


def test_an_id_of_another_workflows_run_is_refused(db: str, tmp_path: Path) -> None:
    signup, other = apps(tmp_path)
    first = legato(db, "run", f"{signup}:signup", "--input", '"ann"', "--id", "signup-ann")
    assert first.returncode == 0, first.stderr
    before = shown(db, "signup-ann")

    for command in ("run", "start"):
        refused = legato(db, command, f"{other}:noargs", "--id", "signup-ann")
        assert refused.returncode == 1, refused.stdout
        assert "resumed" not in refused.stdout and "welcome" not in refused.stdout
        assert "error:" in refused.stderr
        assert "'signup-ann' is taken by a run of workflow 'signup'" in refused.stderr
    attached = legato(db, "run", f"{other}:noargs", "--id", "signup-ann", "--attach")
    assert attached.returncode == 1 and "taken by a run of workflow 'signup'" in attached.stderr
    assert shown(db, "signup-ann") == before  # untouched

    (tmp_path / "doc.yaml").write_text(
        "document: {dsl: '1.0.3', namespace: tests, name: doc, version: '1.0.0'}\n"
        "do:\n  - one:\n      set:\n        a: 1\n"
    )
    blueprint = legato(db, "blueprint", "run", str(tmp_path / "doc.yaml"), "--id", "signup-ann")
    assert blueprint.returncode == 1 and "taken by a run of workflow 'signup'" in blueprint.stderr
    assert len(legato(db, "runs", "list", "--json").stdout.splitlines()) == 1


def test_the_same_start_resumes_other_input_needs_attach(db: str, tmp_path: Path) -> None:
    signup, _ = apps(tmp_path)
    first = legato(db, "run", f"{signup}:signup", "--input", '"ann"', "--id", "s1")
    assert first.returncode == 0, first.stderr
    again = legato(db, "run", f"{signup}:signup", "--input", '"ann"', "--id", "s1")
    assert again.returncode == 0, again.stderr
    assert "run s1 of signup resumed" in again.stdout and "welcome ann" in again.stdout

    other = legato(db, "run", f"{signup}:signup", "--input", '"bob"', "--id", "s1")
    assert other.returncode == 1
    assert "started with other input" in other.stderr and "--attach" in other.stderr
    assert "welcome" not in other.stdout
    started = legato(db, "start", f"{signup}:signup", "--input", '"bob"', "--id", "s1")
    assert started.returncode == 1 and "other input" in started.stderr

    attached = legato(db, "run", f"{signup}:signup", "--input", '"bob"', "--id", "s1", "--attach")
    assert attached.returncode == 0, attached.stderr
    assert "resumed" in attached.stdout and "welcome ann" in attached.stdout  # that run's
    assert shown(db, "s1")["input"] == [["ann"], {}]
