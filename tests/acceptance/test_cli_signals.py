"""The real ``legato signal``: a name a declaring workflow does not take is refused (exit 1,
naming what it declares), a payload that does not fit the declared or awaited type is
refused, and a name the run does not wait for (of a workflow that declares nothing) is
kept with a warning naming what the run waits for. Signals sent before the run waits
still reach it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import legato_cli as legato

APP = """\
import legato
import pydantic


class Approval(pydantic.BaseModel):
    by: str
    amount: int


@legato.workflow(signals={"approve": Approval})
async def approval() -> str:
    got = await legato.wait_for_signal("approve")
    return f"{got.by} approved {got.amount}"


@legato.workflow
async def typed_wait() -> str:
    got = await legato.wait_for_signal("approve", type=Approval)
    return f"{got.by} approved {got.amount}"


@legato.workflow
async def plain() -> object:
    return await legato.wait_for_signal("go")
"""


PLAIN = """\
import legato


@legato.workflow
async def plain() -> object:
    return await legato.wait_for_signal("go")
"""


def app(folder: Path) -> str:
    path = folder / "signals_app.py"
    path.write_text(APP)
    return str(path)


def test_a_declared_workflow_refuses_other_names_and_ill_typed_data(
    db: str, tmp_path: Path
) -> None:
    file = app(tmp_path)
    assert legato(db, "start", f"{file}:approval", "--id", "a1").returncode == 0
    typo = legato(db, "signal", "a1", "aprove", "--data", '{"by": "ann", "amount": 3}')
    assert typo.returncode == 1
    assert "takes no signal 'aprove'" in typo.stderr and "declares 'approve'" in typo.stderr
    short = legato(db, "signal", "a1", "approve", "--data", '{"by": "ann"}')
    assert short.returncode == 1 and "amount" in short.stderr
    # Sent before any worker ran the run: kept, and received when it waits.
    sent = legato(db, "signal", "a1", "approve", "--data", '{"by": "ann", "amount": 3}')
    assert sent.returncode == 0, sent.stderr
    assert "warning" not in sent.stderr
    done = legato(db, "run", f"{file}:approval", "--id", "a1", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["output"] == "ann approved 3"


def test_a_name_the_run_does_not_wait_for_is_kept_with_a_warning(db: str, tmp_path: Path) -> None:
    file = tmp_path / "plain_app.py"  # a workflow that declares nothing
    file.write_text(PLAIN)
    assert legato(db, "start", f"{file}:plain", "--id", "p1").returncode == 0
    typo = legato(db, "signal", "p1", "og", "--data", "1")
    assert typo.returncode == 0, typo.stderr
    assert "signal 'og' sent to run p1" in typo.stdout
    assert "warning: run p1 does not wait for signal 'og' now" in typo.stderr
    assert "it waits for no signal" in typo.stderr


def test_the_type_a_waiting_run_expects_is_checked_at_send(db: str, tmp_path: Path) -> None:
    file = app(tmp_path)
    assert legato(db, "start", f"{file}:typed_wait", "--id", "t1").returncode == 0
    assert legato(db, "start", f"{file}:plain", "--id", "p1").returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "legato", "worker", "--app", file],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        waiting: set[str] = set()  # evicted while they wait for their signals
        while time.monotonic() < deadline and waiting != {"t1", "p1"}:
            listing = legato(db, "runs", "list", "--json").stdout.splitlines()
            waiting = {r["run_id"] for r in map(json.loads, listing) if r["status"] == "waiting"}
        assert waiting == {"t1", "p1"}
        bad = legato(db, "signal", "t1", "approve", "--data", '{"by": "ann", "amount": "lots"}')
        assert bad.returncode == 1 and "amount" in bad.stderr
        typo = legato(db, "signal", "p1", "og")
        assert typo.returncode == 0 and "it waits for 'go'" in typo.stderr
        good = legato(db, "signal", "t1", "approve", "--data", '{"by": "ann", "amount": 9}')
        assert good.returncode == 0 and "warning" not in good.stderr
        record: dict[str, object] = {}
        while time.monotonic() < deadline and record.get("status") != "completed":
            record = json.loads(legato(db, "runs", "show", "t1", "--json").stdout)
        assert record["output"] == "ann approved 9"
    finally:
        worker.terminate()
        worker.communicate(timeout=30)
