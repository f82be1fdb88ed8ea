"""Replay checks for test suites: fail a test when a code change breaks recorded runs.

Keep histories of representative runs (``legato`` exports them as JSON) next to the
tests, and assert that the current code still replays each of them::

    def test_orders_still_replay() -> None:
        assert_replays("tests/histories/order-1234.json")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import NonDeterminismError
from ..runtime.definitions import Workflow
from ..runtime.replay import History, ReplayReport, replay


def assert_replays(
    history_or_path: History | str | Path, workflow: Workflow[Any, Any] | None = None
) -> ReplayReport:
    """Replay a history (or a history file) against ``workflow`` (default: the one
    registered under the run's workflow name); raise if the code no longer matches.

    Raises :class:`legato.NonDeterminismError` carrying the report's problem; returns the
    report when the replay is ok, so a test can check more (``report.outcome``).
    """
    if isinstance(history_or_path, History):
        history = history_or_path
    else:
        history = History.load(history_or_path)
    report = replay(history, workflow)
    if not report.ok:
        raise NonDeterminismError(report.problem or f"run {report.run_id} does not replay")
    return report


__all__ = ["History", "ReplayReport", "assert_replays", "replay"]
