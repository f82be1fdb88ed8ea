"""The ``legato`` command: run, start, signal, cancel and inspect workflows; serve a worker.

Every command goes through :class:`legato.AsyncClient` (or runs a :class:`legato.Worker`),
so the CLI does nothing the Python API cannot. Errors print one line and exit non-zero;
``--debug`` shows the traceback.

This module builds the Typer app: the global options and which command lives where. The
commands themselves are in one module per noun (runs, workers, queues, db, control,
running, replaying, blueprints).
"""

from __future__ import annotations

import sys

import typer

from ..errors import LegatoError
from ..store import DEFAULT_URL
from .blueprints import blueprint_app, events_app
from .common import err, settings
from .control import cancel_command, pause_command, paused_command, resume_command, signal_command
from .db import db_app, health_command
from .queues import queues_app
from .replaying import history_app, replay_command
from .running import run_command, start_command, worker_command
from .runs import runs_app
from .workers import workers_app

app = typer.Typer(
    name="legato",
    help="Durable workflows on SQLite: run, start, signal, cancel, inspect, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    db: str = typer.Option(
        DEFAULT_URL, "--db", envvar="LEGATO_DB", help="Database URL (sqlite:///file.db)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
) -> None:
    settings.db = db
    settings.debug = debug


app.command("run")(run_command)
app.command("start")(start_command)
app.command("worker")(worker_command)
app.command("signal")(signal_command)
app.command("cancel")(cancel_command)
app.add_typer(queues_app, name="queues")
app.add_typer(runs_app, name="runs")
app.add_typer(workers_app, name="workers")
app.add_typer(db_app, name="db")
app.command("health")(health_command)
app.add_typer(history_app, name="history")
app.command("pause")(pause_command)
app.command("resume")(resume_command)
app.command("paused")(paused_command)
app.command("replay")(replay_command)
app.add_typer(blueprint_app, name="blueprint")
app.add_typer(events_app, name="events")


def main() -> None:
    """Entry point of the ``legato`` command."""
    try:
        app()
    except LegatoError as exc:  # raised during option parsing or with --debug
        if settings.debug:
            raise
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(1)
