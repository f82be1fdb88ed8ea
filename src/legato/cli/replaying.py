"""``legato history export`` and ``legato replay``: check new code against recorded runs
before deploying it (the logic is in :mod:`legato.cli.history`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ..client import AsyncClient
from .common import err, existing_db, handles_errors, names_not_empty, out, run_async
from .history import export_history, replay_files

history_app = typer.Typer(help="Export run histories for replay checks.", no_args_is_help=True)


@history_app.command("export")
@handles_errors
def history_export(
    run_id: str = typer.Argument(..., help="Run id."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default: stdout)."),
) -> None:
    """Write a run's history (run + journal) as JSON, for `legato replay`."""

    async def go() -> Any:
        async with AsyncClient(existing_db()) as client:
            return await export_history(client, run_id)

    history = run_async(go())
    if output is None:
        print(history.to_json())
    else:
        history.save(output)
        err.print(f"history of run {run_id} written to {output}")


@handles_errors
def replay_command(
    files: list[Path] = typer.Argument(..., help="History files from `legato history export`."),
    app_paths: list[str] = typer.Option(
        ...,
        "--app",
        metavar="APP",
        callback=names_not_empty,
        help="FILE.py or MODULE with the new code (FILE.py:APP for a legato.App); repeat "
        "for several.",
    ),
) -> None:
    """Replay recorded histories against new code; report non-determinism before deploying."""
    reports = replay_files(files, app_paths)
    for report in reports:
        out.print(report.summary())
    bad = [r for r in reports if not r.ok]
    if bad:
        err.print(f"{len(bad)} of {len(reports)} histories would not replay on this code")
        raise typer.Exit(1)
    out.print(f"all {len(reports)} histories replay on this code")
