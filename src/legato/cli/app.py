"""The ``legato`` command: run, start, signal, cancel and inspect workflows; serve a worker.

Every command goes through :class:`legato.AsyncClient` (or runs a :class:`legato.Worker`),
so the CLI does nothing the Python API cannot. Errors print one line and exit non-zero;
``--debug`` shows the traceback.

This module builds the Typer app: the global options, which command lives where, and how
the command line is read. The commands themselves are in one module per noun (runs,
workers, queues, db, control, running, replaying, blueprints).

Exit codes: 0 ok; 1 the operation failed; 2 the command line is wrong (a usage error,
found before anything is done). Usage errors are one line, as every other error is; with
``--json`` each error is a JSON object on stderr instead.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # Typer vendors click

from .. import __version__
from ..errors import LegatoError
from ..store import DEFAULT_URL
from .blueprints import blueprint_app, events_app
from .common import EXIT_FAILED, EXIT_USAGE, Usage, err, masked, report_error, settings
from .control import cancel_command, pause_command, paused_command, resume_command, signal_command
from .db import db_app, health_command
from .queues import queues_app
from .replaying import history_app, replay_command
from .running import run_command, start_command, worker_command
from .runs import runs_app
from .workers import workers_app

HELP = (
    "Legato: durable workflow orchestration. Start, signal, cancel, pause and inspect "
    "workflow runs; serve workers; publish and run blueprints. Runs survive crashes and "
    "restarts (SQLite on one machine, PostgreSQL for workers on many hosts)."
)

app = typer.Typer(
    name="legato",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help as plain text; errors are ours (one line, see run_cli)
    context_settings={"help_option_names": ["-h", "--help"]},
)

SCHEMES = ("sqlite:", "postgresql:", "postgres:")


def _check_db(value: str) -> str:
    settings.db = value  # so that messages mask its password from here on
    if not value.startswith(SCHEMES):
        raise Usage(
            f"--db {masked(value)!r} is not a database URL: use sqlite:///path/to/file.db or "
            "postgresql://user@host:5432/db[?schema=name] (or set LEGATO_DB)"
        )
    try:
        urlparse(value)
    except ValueError as exc:  # "Invalid IPv6 URL": a traceback otherwise
        raise Usage(f"--db {masked(value)!r} is not a database URL: {exc}") from exc
    return value


def _show_version(value: bool) -> None:
    if value:
        print(f"legato {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    db: str = typer.Option(
        DEFAULT_URL,
        "--db",
        envvar="LEGATO_DB",
        metavar="URL",
        callback=_check_db,
        help="Database URL: sqlite:///file.db or postgresql://user@host/db[?schema=name]. "
        "Also accepted after the command.",
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show tracebacks. Also accepted after the command."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_show_version, help="Print the version."
    ),
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


# -- reading the command line ---------------------------------------------------------------
GLOBAL_VALUE_OPTIONS = ("--db",)
GLOBAL_FLAGS = ("--debug",)


def _options_taking_values(command: Any) -> set[str]:
    """The option names of ``command`` that take a value (``--limit 5``, not ``--json``)."""
    names: set[str] = set()
    for param in getattr(command, "params", []):
        if param.param_type_name != "option" or getattr(param, "is_flag", False):
            continue
        if getattr(param, "count", False):
            continue
        names.update(param.opts)
    return names


def hoist_global_options(root: Any, args: Sequence[str]) -> list[str]:
    """Move ``--db URL`` / ``--db=URL`` / ``--debug`` given after the command to before it,
    where the root command reads them (``legato runs list --db URL`` works).

    Values of the command's own options are skipped (so ``--input --db`` stays an input),
    and nothing after ``--`` moves.
    """
    args = list(args)
    command, i = root, 0
    while i < len(args):  # walk down the groups to the command, past their options
        token = args[i]
        if token == "--":
            return args
        if token.startswith("-"):
            i += 2 if token in _options_taking_values(command) else 1
            continue
        sub = getattr(command, "commands", {}).get(token)
        i += 1
        if sub is None:
            return args
        command = sub
        if not getattr(command, "commands", None):
            break
    hoisted: list[str] = []
    rest: list[str] = []
    takes_value = _options_taking_values(command)
    tail = args[i:]
    j = 0
    while j < len(tail):
        token = tail[j]
        if token == "--":
            rest.extend(tail[j:])
            break
        if token in GLOBAL_VALUE_OPTIONS:
            if j + 1 == len(tail):
                raise Usage(f"{token} needs a value: {token} URL")
            hoisted.extend(tail[j : j + 2])
            j += 2
            continue
        if token.split("=", 1)[0] in GLOBAL_VALUE_OPTIONS or token in GLOBAL_FLAGS:
            hoisted.append(token)
        elif token in takes_value and j + 1 < len(tail):
            rest.extend(tail[j : j + 2])
            j += 2
            continue
        else:
            rest.append(token)
        j += 1
    return hoisted + args[:i] + rest


def _name_metavars(command: Any) -> None:
    """Give every option that takes a value a metavar named after it (``--limit LIMIT``),
    and every argument its name in capitals (``RUN_ID``), unless it has one: help never
    shows a type such as ``<int>``, ``<str>`` or ``<bool>``."""
    for param in getattr(command, "params", []):
        takes_value = not getattr(param, "is_flag", False) and not getattr(param, "count", 0)
        if param.metavar is not None or not takes_value:
            continue
        if param.param_type_name == "option":
            longest = max(param.opts, key=len).lstrip("-")
            param.metavar = longest.upper().replace("-", "_")
        elif param.param_type_name == "argument" and param.name:
            param.metavar = param.name.upper()
    for sub in getattr(command, "commands", {}).values():
        _name_metavars(sub)


def _command() -> Any:
    command = typer.main.get_command(app)
    _name_metavars(command)
    return command


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Run the ``legato`` command on ``argv`` (default: the process's); return its exit
    code. Tests call this in-process; :func:`main` exits with it."""
    args = list(sys.argv[1:] if argv is None else argv)
    before_dashes = args[: args.index("--")] if "--" in args else args
    settings.json = "--json" in before_dashes
    settings.debug = "--debug" in before_dashes
    settings.db = DEFAULT_URL
    command = _command()
    try:
        args = hoist_global_options(command, args)
        value = command.main(args, prog_name="legato", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `legato` or `legato runs` alone: the help
        err.print(exc.format_message())
        return EXIT_USAGE
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "legato"
        message = " ".join(exc.format_message().split())
        report_error("UsageError", f"{message} (see {where} --help)", EXIT_USAGE)
        return EXIT_USAGE
    except typer.Abort:
        report_error("Aborted", "aborted", EXIT_FAILED)
        return EXIT_FAILED
    except LegatoError as exc:  # raised during option parsing, or with --debug
        if settings.debug:
            raise
        report_error(type(exc).__name__, str(exc), EXIT_FAILED)
        return EXIT_FAILED
    return value if isinstance(value, int) else 0


def main() -> None:
    """Entry point of the ``legato`` command."""
    sys.exit(run_cli())
