"""``legato blueprint ...`` and ``legato events ...``: workflow documents from the shell.

``validate`` and ``publish`` report every problem of every file as
``file:line:column path: message`` on stderr (the form editors and CI annotate), so one
run shows all there is to fix. The blueprint machinery (YAML, jq) is imported inside the
commands, so the rest of the ``legato`` command does not pay for it at start-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from ..apps import DEFAULT_APP
from ..blueprint.document import decode_source
from ..client import AsyncClient
from ..errors import BlueprintInvalid, Conflict, InvalidInput
from ..records import BlueprintRecord, RunRecord, RunStatus
from .common import (
    err,
    existing_db,
    handles_errors,
    names_not_empty,
    not_empty,
    out,
    parse_json,
    seconds,
    settings,
    warn_if_new,
)
from .loader import load_registries
from .progress import follow, watching_servers
from .render import Grid, show, stamp

if TYPE_CHECKING:
    from ..blueprint.document import Blueprint

blueprint_app = typer.Typer(
    help="Publish, inspect and run blueprints (workflow documents).", no_args_is_help=True
)
events_app = typer.Typer(
    help="Publish events that blueprint runs listen for.", no_args_is_help=True
)

_APP_HELP = (
    "FILE.py or MODULE registering custom functions and task kinds (checked by name); "
    "FILE.py:APP or MODULE:APP for those of the legato.App named APP there."
)

KindChecks = Mapping[str, Callable[[Any], list[str]]]


def _checks(app_paths: list[str] | None) -> tuple[Collection[str] | None, KindChecks]:
    """Function names and task-kind checks to validate against (after importing ``--app``).

    Without ``--app`` the names a document calls are not checked (nothing says which
    exist); extension task kinds are always checked, so an unknown kind is never skipped.
    """
    if not app_paths:
        return None, DEFAULT_APP.kind_checks()
    registry = load_registries(app_paths)
    return set(registry.functions), registry.kind_checks()


def _read(file: str) -> str:
    path = Path(file)
    if not path.is_file():
        raise InvalidInput(f"{file}: no such file (give the path of a .yaml or .json file)")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{file}: cannot read it: {exc}") from exc
    return decode_source(data, file)  # bytes that are not UTF-8: a positioned problem


def _report(problems: Collection[object]) -> None:
    for problem in problems:
        err.print(str(problem), markup=False, highlight=False, soft_wrap=True)


@blueprint_app.command("validate")
@handles_errors
def validate_command(
    files: list[str] = typer.Argument(..., help="Blueprint files (.yaml, .yml or .json)."),
    app_paths: list[str] | None = typer.Option(
        None, "--app", metavar="APP", callback=names_not_empty, help=_APP_HELP
    ),
) -> None:
    """Check blueprint files against the DSL; print every problem; exit 1 if any."""
    from ..blueprint.validation import check_text

    names, kinds = _checks(app_paths)
    failed = 0
    for file in files:
        try:
            _document, problems = check_text(_read(file), file, functions=names, kinds=kinds)
        except BlueprintInvalid as exc:
            _report(exc.problems)
            failed += 1
            continue
        except InvalidInput as exc:
            err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            failed += 1
            continue
        if problems:
            _report(problems)
            failed += 1
        else:
            out.print(f"{file}: ok", markup=False, highlight=False)
    if failed:
        err.print(f"{failed} of {len(files)} file(s) have problems", highlight=False)
        raise typer.Exit(1)


@blueprint_app.command("publish")
@handles_errors
def publish_command(
    files: list[str] = typer.Argument(..., help="Blueprint files (.yaml, .yml or .json)."),
    app_paths: list[str] | None = typer.Option(
        None, "--app", metavar="APP", callback=names_not_empty, help=_APP_HELP
    ),
) -> None:
    """Validate blueprint files, then publish each under its namespace, name and version.

    Nothing is published unless every file is valid. Publishing unchanged content again
    is fine; changed content under a published version is refused (exit 1).
    """
    from ..blueprint.document import load_blueprint

    names, kinds = _checks(app_paths)
    loaded: list[Blueprint] = []
    invalid = 0
    for file in files:
        try:
            loaded.append(load_blueprint(_read(file), file, functions=names, kinds=kinds))
        except BlueprintInvalid as exc:
            _report(exc.problems)
            invalid += 1
        except InvalidInput as exc:
            err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            invalid += 1
    if invalid:
        err.print(f"{invalid} of {len(files)} file(s) have problems; nothing was published")
        raise typer.Exit(1)
    warn_if_new()
    if not asyncio.run(_publish_all(loaded)):
        raise typer.Exit(1)


async def _publish_all(blueprints: list[Blueprint]) -> bool:
    """Publish each blueprint; report each outcome; False if any was refused."""
    ok = True
    async with AsyncClient(settings.db) as client:
        for blueprint in blueprints:
            what = f"{blueprint.namespace}/{blueprint.name} {blueprint.version}"
            try:
                record, published = await client.publish_blueprint(blueprint)
            except (Conflict, InvalidInput) as exc:
                err.print(Text.assemble(("refused:", "red"), f" {exc}"))
                ok = False
                continue
            if not published:
                out.print(f"{what} already published (same content)", highlight=False)
            else:
                out.print(f"published {what} (digest {record.digest[:12]})", highlight=False)
    return ok


@blueprint_app.command("list")
@handles_errors
def list_command(
    namespace: str | None = typer.Option(
        None, "--namespace", "-n", metavar="NS", callback=not_empty, help="Only this namespace."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List every published version of every blueprint."""

    async def go() -> list[BlueprintRecord]:
        async with AsyncClient(existing_db()) as client:
            return await client.list_blueprints(namespace)

    records = asyncio.run(go())
    if as_json:
        for record in records:
            print(json.dumps(_record_dict(record, source=False)))
        return
    if not records:
        out.print("no blueprint is published yet: legato blueprint publish FILE")
        return
    columns = ("namespace", "name", "version", "digest", "published")
    grid = Grid(f"{len(records)} published blueprint version(s)", columns)
    for r in records:
        grid.add(r.namespace, r.name, r.version, r.digest[:12], stamp(r.published_at))
    show(out, grid)


@blueprint_app.command("show")
@handles_errors
def show_command(
    ref: str = typer.Argument(..., help="[NAMESPACE/]NAME[:VERSION] (default: the latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print the record as JSON."),
) -> None:
    """Print a published blueprint's document exactly as it was published."""

    async def go() -> BlueprintRecord:
        async with AsyncClient(existing_db()) as client:
            return await client.get_blueprint(ref)

    record = asyncio.run(go())
    if as_json:
        print(json.dumps(_record_dict(record, source=True)))
    else:
        print(record.source, end="" if record.source.endswith("\n") else "\n")


@blueprint_app.command("run")
@handles_errors
def run_command(
    ref: str = typer.Argument(
        ...,
        help="[NAMESPACE/]NAME[:VERSION] of a published blueprint (default: the latest), or "
        "the path of a draft file (.yaml, .yml, .json) to validate and run unpublished.",
    ),
    input: str | None = typer.Option(
        None, "--input", "-i", metavar="JSON", help="JSON input, or @file.json"
    ),
    run_id: str | None = typer.Option(
        None, "--id", metavar="ID", callback=not_empty, help="Run id (idempotent)."
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the run to end."),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        metavar="SECONDS",
        callback=seconds,
        help="Seconds to wait at most (default: until it ends).",
    ),
    app_paths: list[str] | None = typer.Option(
        None, "--app", metavar="APP", callback=names_not_empty, help=_APP_HELP
    ),
    attach: bool = typer.Option(
        False, "--attach", help="Follow the run --id names even if its input differs."
    ),
) -> None:
    """Start a run of a published blueprint, or of a draft file (nothing is published).

    With --wait (the default) it shows the run's steps on stderr and prints the run's
    output as JSON when it ends, or its error (exit 1); when no live worker can run it,
    an embedded worker (of --app's app) runs it here. With --no-wait print the run id at
    once. A draft runs with every check a published version has, and may not run shell
    commands or scripts: only a published version may.
    """
    value = parse_json(input, "--input")
    warn_if_new()
    draft = _draft(ref, app_paths) if _is_file_ref(ref) else None
    registry = load_registries(app_paths) if app_paths else DEFAULT_APP
    app_hint = " --app ".join(app_paths) if app_paths else None
    shown = ref if draft is None else f"draft {draft.ref} ({ref})"

    async def go() -> tuple[str, RunRecord | None]:
        async with AsyncClient(settings.db, app=registry) as client:
            handle = await client.start_blueprint(
                draft if draft is not None else ref, input=value, run_id=run_id, attach=attach
            )
            if not wait:
                return handle.run_id, None
            verb = "started" if handle.created else "already exists"
            err.print(
                f"run {handle.run_id} of {shown} {verb}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
            return handle.run_id, await _follow(client, handle.run_id, timeout, app_hint)

    started, record = asyncio.run(go())
    if record is None:
        print(started)
        return
    if record.status is RunStatus.COMPLETED:
        print(record.output if record.output is not None else "null")
        return
    err.print(
        Text.assemble((f"run {record.run_id} {record.status.value}", "red"), ": "),
        _error_text(record),
        sep="",
    )
    err.print(f"details: legato runs show {record.run_id}")
    raise typer.Exit(1)


def _is_file_ref(ref: str) -> bool:
    """A path to a draft rather than a published name: it exists, or looks like a file."""
    return Path(ref).is_file() or ref.endswith((".yaml", ".yml", ".json"))


def _draft(file: str, app_paths: list[str] | None) -> Blueprint:
    """The draft in ``file``, validated as ``publish`` would (every problem reported)."""
    from ..blueprint.document import load_blueprint

    names, kinds = _checks(app_paths)
    try:
        return load_blueprint(_read(file), file, functions=names, kinds=kinds)
    except BlueprintInvalid as exc:
        _report(exc.problems)
        err.print(f"{file} has problems; nothing was run", markup=False, highlight=False)
        raise typer.Exit(1) from None


async def _follow(
    client: AsyncClient, run_id: str, timeout: float | None, app_path: str | None
) -> RunRecord:
    """Show the run's steps until it ends; run it here when no live worker can."""
    from ..worker import Worker

    worker: Worker | None = None
    if not await client.servers_for(run_id):
        queue = (await client.get(run_id)).queue
        worker = Worker(client, queues=[queue])
        err.print(
            f"no live worker can execute it: running it here (queue {queue}, app "
            f"{client.app.name}); start one with `legato worker` to run it elsewhere",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    serving = asyncio.create_task(worker.run()) if worker is not None else None
    try:
        async with watching_servers(client, run_id, err, app_path or "FILE.py"):
            return await follow(client, run_id, err, timeout=timeout)
    finally:
        if worker is not None and serving is not None:
            worker.stop()
            await serving


def _error_text(record: RunRecord) -> str:
    """What went wrong, from a run's error: the DSL problem when there is one."""
    error = record.error_dict() or {}
    problem = error.get("problem")
    if isinstance(problem, dict):
        where = f" at {problem['instance']}" if problem.get("instance") else ""
        detail = f": {problem['detail']}" if problem.get("detail") else ""
        title = problem.get("title") or problem.get("type")
        return f"{title} (status {problem.get('status')}){where}{detail}"
    if error:
        return f"{error.get('type', 'error')}: {error.get('message', '')}"
    return "no error recorded (see legato runs show)"


def _record_dict(record: BlueprintRecord, source: bool) -> dict[str, Any]:
    fields = dataclasses.asdict(record)
    if not source:
        del fields["source"]
    return fields


@events_app.command("emit")
@handles_errors
def emit_command(
    type: str = typer.Option(
        ...,
        "--type",
        metavar="TYPE",
        callback=not_empty,
        help="Event type, e.g. com.example.order.placed.",
    ),
    source: str = typer.Option(
        ..., "--source", metavar="SOURCE", callback=not_empty, help="Event source, e.g. /shop."
    ),
    data: str | None = typer.Option(
        None, "--data", "-d", metavar="JSON", help="JSON data, or @file.json"
    ),
    subject: str | None = typer.Option(
        None, "--subject", metavar="SUBJECT", callback=not_empty, help="Event subject."
    ),
) -> None:
    """Publish a CloudEvent; blueprint runs listening for it receive it."""
    value = parse_json(data, "--data")
    warn_if_new()

    extra = {"subject": subject} if subject is not None else {}

    async def go() -> dict[str, Any]:
        async with AsyncClient(settings.db) as client:
            return await client.emit_event(type=type, source=source, data=value, **extra)

    envelope = asyncio.run(go())
    out.print(f"event {envelope.get('id')} ({type} from {source}) emitted", highlight=False)


__all__ = ["blueprint_app", "events_app"]
