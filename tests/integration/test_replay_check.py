"""Offline replay check: export a run's history, replay it against changed code.

Changed versions of a workflow are built with ``legato.Workflow(fn, name=...)`` (not the
decorator), so they are not registered and are passed to the replay explicitly: the
registry refuses two functions under one name, as it should.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import legato
from legato import EntryKind, EntryStatus, JournalEntry, RunRecord, RunStatus
from legato.cli.history import export_history, replay_files
from legato.errors import InvalidInput, NonDeterminismError, WorkflowNotFound
from legato.runtime.replay import HISTORY_FORMAT, replay_history
from legato.testing import History, assert_replays, replay
from tests.helpers import run, running_worker, status_is, wait_until


@legato.step
async def rc_reserve(x: int) -> int:
    return x + 1


@legato.step
async def rc_charge(x: int) -> int:
    return x * 10


@legato.step
async def rc_ship(x: int) -> int:
    return x - 1


@legato.step
async def rc_audit(x: int) -> None:
    return None


@legato.workflow(name="replay_check.order")
async def order(x: int) -> int:
    reserved = await rc_reserve(x)
    charged = await rc_charge(reserved)
    return await rc_ship(charged)


async def _order_with_audit(x: int) -> int:
    reserved = await rc_reserve(x)
    await rc_audit(reserved)  # inserted before the second step: breaks recorded runs
    charged = await rc_charge(reserved)
    return await rc_ship(charged)


async def _order_with_patched_audit(x: int) -> int:
    reserved = await rc_reserve(x)
    if legato.patched("add-audit"):
        await rc_audit(reserved)
    charged = await rc_charge(reserved)
    return await rc_ship(charged)


async def _order_without_shipping(x: int) -> int:
    reserved = await rc_reserve(x)
    return await rc_charge(reserved)


order_with_audit = legato.Workflow(_order_with_audit, name="replay_check.order")
order_with_patched_audit = legato.Workflow(_order_with_patched_audit, name="replay_check.order")
order_without_shipping = legato.Workflow(_order_without_shipping, name="replay_check.order")


@legato.workflow(name="replay_check.approval")
async def approval(x: int) -> int:
    reserved = await rc_reserve(x)
    await legato.wait_for_signal("approve")
    return await rc_ship(reserved)


async def _approval_with_audit_after_signal(x: int) -> int:
    reserved = await rc_reserve(x)
    await legato.wait_for_signal("approve")
    await rc_audit(reserved)  # after the point where the recorded run waits: harmless
    return await rc_ship(reserved)


async def _approval_renamed_signal(x: int) -> int:
    reserved = await rc_reserve(x)
    await legato.wait_for_signal("approved")
    return await rc_ship(reserved)


approval_with_audit = legato.Workflow(
    _approval_with_audit_after_signal, name="replay_check.approval"
)
approval_renamed = legato.Workflow(_approval_renamed_signal, name="replay_check.approval")


def record_completed_order(db_url: str, tmp_path: Path) -> Path:
    """Run ``order`` to completion with a real worker; export its history to a file."""

    async def body() -> History:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(order, 4)
            assert await client.result(handle.run_id, timeout=20) == 49
            return await export_history(client, handle.run_id)

    path = tmp_path / "order.json"
    run(body).save(path)
    return path


# -- against recorded runs (SQLite and PostgreSQL) ------------------------------------------
def test_completed_run_replays_against_the_same_code(db_url: str, tmp_path: Path) -> None:
    path = record_completed_order(db_url, tmp_path)
    document = json.loads(path.read_text())
    assert document["format"] == HISTORY_FORMAT
    assert document["run"]["status"] == "completed"
    assert [e["name"] for e in document["journal"]] == ["rc_reserve", "rc_charge", "rc_ship"]

    history = History.load(path)
    assert History.from_json(history.to_json()) == history
    report = replay(history)
    assert report.ok, report.problem
    assert (report.outcome, report.entries_checked, report.problem) == ("completed", 3, None)
    assert report.workflow == "replay_check.order"
    assert assert_replays(path) == report


def test_inserted_step_is_reported(db_url: str, tmp_path: Path) -> None:
    path = record_completed_order(db_url, tmp_path)
    report = replay(History.load(path), order_with_audit)
    assert not report.ok
    assert report.problem is not None
    assert "position 2" in report.problem
    assert "'rc_charge'" in report.problem and "'rc_audit'" in report.problem
    assert "test_replay_check.py" in report.problem  # where the new command is
    assert report.entries_checked == 1
    with pytest.raises(NonDeterminismError, match="rc_audit"):
        assert_replays(path, order_with_audit)


def test_change_guarded_by_patched_replays(db_url: str, tmp_path: Path) -> None:
    path = record_completed_order(db_url, tmp_path)
    report = assert_replays(path, order_with_patched_audit)
    assert (report.ok, report.outcome, report.entries_checked) == (True, "completed", 3)


def test_removed_last_step_is_reported(db_url: str, tmp_path: Path) -> None:
    path = record_completed_order(db_url, tmp_path)
    report = replay(History.load(path), order_without_shipping)
    assert not report.ok
    assert report.outcome == "completed"
    assert report.problem is not None
    assert "'rc_ship' at position 3" in report.problem
    assert "legato.patched" in report.problem


def test_waiting_run_replays_as_in_progress(db_url: str, tmp_path: Path) -> None:
    async def body() -> History:
        async with running_worker(db_url) as (_, client):
            handle = await client.start(approval, 1)
            await wait_until(status_is(client, handle.run_id, RunStatus.WAITING))
            history = await export_history(client, handle.run_id)
            # The check also runs inside a loop that already has Legato's task factory.
            report = await replay_history(history)
            assert (report.ok, report.outcome) == (True, "in_progress")
            return history

    history = run(body)
    assert [(e.kind, e.status) for e in history.journal] == [
        (EntryKind.STEP, EntryStatus.COMPLETED),
        (EntryKind.SIGNAL, EntryStatus.WAITING),
    ]
    report = replay(history)
    assert (report.ok, report.outcome, report.entries_checked) == (True, "in_progress", 2)
    # A change past the point where the run waits cannot break it.
    assert replay(history, approval_with_audit).ok
    renamed = replay(history, approval_renamed)
    assert not renamed.ok
    assert renamed.problem is not None and "'approved'" in renamed.problem


# -- hand-written histories (no database) ----------------------------------------------------
def _entry(seq: str, kind: EntryKind, name: str, output: str | None = None) -> JournalEntry:
    return JournalEntry(
        "h1", seq, kind, name, EntryStatus.COMPLETED, attempts=1, output=output, ended_at=1.0
    )


def _history(workflow: str, *entries: JournalEntry, status: RunStatus) -> History:
    record = RunRecord("h1", workflow, status, input="[[4], {}]", created_at=1.0)
    return History(record, list(entries))


ORDER_JOURNAL = (
    _entry("1", EntryKind.STEP, "rc_reserve", "5"),
    _entry("2", EntryKind.STEP, "rc_charge", "50"),
    _entry("3", EntryKind.STEP, "rc_ship", "49"),
)


def test_assert_replays_raises_with_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    _history("replay_check.order", *ORDER_JOURNAL, status=RunStatus.COMPLETED).save(path)
    assert assert_replays(str(path)).ok
    with pytest.raises(NonDeterminismError, match="'rc_ship' at position 3"):
        assert_replays(path, order_without_shipping)


def test_recorded_cancellation_is_replayed() -> None:
    history = _history(
        "replay_check.order",
        ORDER_JOURNAL[0],
        _entry("2", EntryKind.CANCEL, "cancel"),
        status=RunStatus.CANCELLED,
    )
    report = replay(history)
    assert (report.ok, report.outcome, report.entries_checked) == (True, "cancelled", 2)


def test_code_that_now_raises_is_reported_unless_the_run_failed() -> None:
    async def _order_that_raises(x: int) -> int:
        reserved = await rc_reserve(x)
        raise ValueError(f"no stock for {reserved}")

    raising = legato.Workflow(_order_that_raises, name="replay_check.order")
    waiting = _history("replay_check.order", ORDER_JOURNAL[0], status=RunStatus.WAITING)
    report = replay(waiting, raising)
    assert (report.ok, report.outcome) == (False, "failed")
    assert report.problem is not None and "ValueError: no stock for 5" in report.problem
    failed = _history("replay_check.order", ORDER_JOURNAL[0], status=RunStatus.FAILED)
    assert replay(failed, raising).ok


def test_replay_that_never_settles_is_inconclusive() -> None:
    async def _hangs(x: int) -> None:
        await asyncio.sleep(3600)  # not durable: the replay cannot tell where it stands

    hangs = legato.Workflow(_hangs, name="replay_check.hangs")
    history = _history("replay_check.hangs", status=RunStatus.RUNNING)
    # asyncio.run has no task factory: replay_history installs Legato's for the replay.
    report = asyncio.run(replay_history(history, hangs, max_seconds=0.2))
    assert (report.ok, report.outcome) == (False, "in_progress")
    assert report.problem is not None and "inconclusive" in report.problem


def test_history_format_is_checked() -> None:
    history = _history("replay_check.order", *ORDER_JOURNAL, status=RunStatus.COMPLETED)
    document: dict[str, Any] = json.loads(history.to_json())
    assert list(document) == ["format", "run", "journal"]
    assert document["journal"][0]["kind"] == "step"
    document["run"]["added_in_a_later_release"] = 1  # unknown keys are ignored
    assert History.from_json(json.dumps(document)) == history
    with pytest.raises(InvalidInput, match="legato-history/1"):
        History.from_json(json.dumps({**document, "format": "legato-history/9"}))
    with pytest.raises(InvalidInput, match="two journal entries at position 1"):
        History.from_json(json.dumps({**document, "journal": document["journal"][:1] * 2}))
    with pytest.raises(InvalidInput, match="does not fit RunRecord"):
        History.from_json(json.dumps({**document, "run": {**document["run"], "status": "x"}}))


APP = """
import legato


@legato.step
async def rc_greet_step(name: str) -> str:
    return "hi " + name


@legato.workflow(name="replay_check.greet")
async def greet(name: str) -> str:
    return await rc_greet_step(name)
"""


def test_replay_files_loads_the_app(tmp_path: Path) -> None:
    app = tmp_path / "replay_check_app.py"
    app.write_text(APP)
    good = tmp_path / "greet.json"
    record = RunRecord("g1", "replay_check.greet", RunStatus.COMPLETED, input='[["ann"], {}]')
    step = JournalEntry(
        "g1", "1", EntryKind.STEP, "rc_greet_step", EntryStatus.COMPLETED, output='"hi ann"'
    )
    History(record, [step]).save(good)
    (report,) = replay_files([good], str(app))
    assert (report.ok, report.run_id, report.outcome) == (True, "g1", "completed")

    unknown = tmp_path / "unknown.json"
    History(RunRecord("u1", "replay_check.nowhere", RunStatus.RUNNING), []).save(unknown)
    with pytest.raises(WorkflowNotFound, match=r"unknown\.json.*not registered"):
        replay_files([good, unknown], str(app))
