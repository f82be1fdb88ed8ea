"""What the ``legato`` history commands do: export a run's history, replay history files.

Plain functions, so the Typer commands stay thin and the logic is testable without a CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..client import AsyncClient
from ..errors import WorkflowNotFound
from ..runtime.replay import History, ReplayReport, replay
from .loader import load_registries


async def export_history(client: AsyncClient, run_id: str) -> History:
    """The run and its journal as a :class:`History` (RunNotFound if there is no such run).

    The run is read before its journal, so a run that moves on in between yields a journal
    at least as long as its status implies; a replay handles both.
    """
    run = await client.get(run_id)
    journal = await client.journal(run_id)
    return History(run, journal)


def replay_files(paths: list[Path], app: str | Sequence[str]) -> list[ReplayReport]:
    """Import ``app`` (``file.py`` or ``package.module``, or ``file.py:APP`` for the
    :class:`legato.App` named ``APP`` there) so its workflows register, then replay each
    history file against them, in order. Several targets are served together (as a
    worker given ``--app`` twice serves them).

    Raises InvalidInput naming the file when one cannot be read, WorkflowNotFound naming it
    when its workflow is not defined by ``app``; a code mismatch is not an error but a
    report with ``ok=False``.
    """
    registry = load_registries([app] if isinstance(app, str) else app)
    reports: list[ReplayReport] = []
    for path in paths:
        history = History.load(path)
        try:
            reports.append(replay(history, app=registry))
        except WorkflowNotFound as exc:
            raise WorkflowNotFound(f"{path}: {exc}") from exc
    return reports
