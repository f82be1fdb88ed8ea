"""The employee-onboarding example: rollback by compensation, and a crash mid-rollback."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import legato
from legato import EntryKind, EntryStatus, RunStatus
from tests.helpers import run, running_worker

EXAMPLE = Path(__file__).parents[2] / "examples" / "employee_onboarding.py"


def load_example() -> ModuleType:
    """Import examples/employee_onboarding.py once (its workflow registers by name)."""
    if "employee_onboarding" in sys.modules:
        return sys.modules["employee_onboarding"]
    spec = importlib.util.spec_from_file_location("employee_onboarding", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["employee_onboarding"] = module
    spec.loader.exec_module(module)
    return module


def ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failing_step_3_compensates_steps_2_then_1(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example()
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("ONBOARDING_LEDGER", str(path))
    hire = example.NewHire("Alan Turing", "crypto", "joan", fail_at="schedule_training")

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(example.onboard, hire)
            record = await client.wait(handle.run_id, timeout=30)
            journal = await client.journal(handle.run_id)
        assert record.status is RunStatus.FAILED
        actions = [line["action"] for line in ledger(path)]
        assert actions == [
            "create_account",
            "assign_equipment",
            "return_equipment",  # step 2 undone first...
            "delete_account",  # ...then step 1
        ]
        undo = [(e.seq, e.name, e.status) for e in journal if e.kind is EntryKind.COMPENSATE]
        assert undo == [
            ("4", "rollback", EntryStatus.COMPLETED),  # the plan: positions 2, then 1
            ("5", "return_equipment", EntryStatus.COMPLETED),
            ("6", "delete_account", EntryStatus.COMPLETED),
        ]
        plan = next(e for e in journal if e.name == "rollback")
        assert plan.output == '["2", "1"]'
        failed = next(e for e in journal if e.name == "schedule_training")
        assert failed.status is EntryStatus.FAILED and failed.attempts == 1  # non-retryable
        error = record.error_dict()
        assert error is not None and "schedule_training is down" in error["message"]
        assert [(c["step"], c["status"]) for c in error["compensations"]] == [
            ("assign_equipment", "completed"),
            ("create_account", "completed"),
        ]
        # the compensation was given the step's result
        assert ledger(path)[2]["subject"] == ledger(path)[1]["subject"]

    run(body)


def test_a_successful_onboarding_compensates_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = load_example()
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("ONBOARDING_LEDGER", str(path))

    async def body() -> None:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(example.onboard, example.NewHire("Ada", "x", "grace"))
            result = await client.result(handle.run_id, timeout=30)
        assert result["login"] == "ada" and result["manager"] == "grace"
        assert [line["action"] for line in ledger(path)] == [
            "create_account",
            "assign_equipment",
            "schedule_training",
            "notify_manager",
        ]

    run(body)


def _cli(db: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "legato", "--db", db, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


@pytest.mark.fault
def test_a_crash_while_compensating_resumes_without_repeating_compensations(
    db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "ledger.jsonl"
    env = {**os.environ, "ONBOARDING_LEDGER": str(path), "ONBOARDING_LATENCY": "0.5"}
    hire = {"name": "Alan Turing", "team": "crypto", "manager": "joan", "fail_at": "notify_manager"}
    started = _cli(
        db_url, "start", f"{EXAMPLE}:onboard", "--input", json.dumps(hire), "--id", "o1", env=env
    )
    assert started.returncode == 0, started.stderr

    def spawn() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "legato", "--db", db_url, "worker", "--app", str(EXAMPLE)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    client = legato.Client(db_url)

    def compensations_done() -> list[str]:
        return [
            e.name
            for e in client.journal("o1")
            if e.kind is EntryKind.COMPENSATE
            and e.status is EntryStatus.COMPLETED
            and e.name != "rollback"
        ]

    worker = spawn()
    try:
        deadline = time.monotonic() + 60
        # Kill it once one compensation is recorded and the next one is under way.
        while not (
            compensations_done() == ["cancel_training"]
            and client.journal("o1")[-1].name == "return_equipment"
        ):
            assert time.monotonic() < deadline, ledger(path)
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        assert compensations_done() == ["cancel_training"]  # the crash came mid-rollback

        again = spawn()  # takes the dead worker's run over at once (same host, pid gone)
        try:
            deadline = time.monotonic() + 60
            while client.get("o1").status is not RunStatus.FAILED:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            again.send_signal(signal.SIGTERM)
            again.communicate(timeout=30)
        done = compensations_done()
    finally:
        if worker.poll() is None:
            worker.kill()
        client.close()

    actions = [x["action"] for x in ledger(path)]
    forward = ["create_account", "assign_equipment", "schedule_training"]
    assert actions[:3] == forward  # no step ran twice
    undo = actions[3:]
    assert undo.count("cancel_training") == 1  # the finished compensation was not repeated
    assert undo.count("delete_account") == 1
    # return_equipment was in flight at the kill: at-least-once, so once or twice
    assert undo.count("return_equipment") in (1, 2)
    assert undo[0] == "cancel_training" and undo[-1] == "delete_account"
    assert done == ["cancel_training", "return_equipment", "delete_account"]


def test_the_example_is_a_registered_workflow() -> None:
    example = load_example()
    assert isinstance(example.onboard, legato.Workflow)
    assert example.create_account.compensation is example.delete_account
