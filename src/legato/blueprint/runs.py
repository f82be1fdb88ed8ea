"""Blueprint runs on the durable runtime: one interpreter serves every blueprint.

A run belongs to workflow ``blueprint:<namespace>/<name>`` and carries its document's
text in its input, so it is pinned to the exact document it started with, whatever is
published later; its ``version`` column is the document's version.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from ..apps import BUILTINS
from ..errors import BlueprintFault
from ..payload import dumps
from ..records import NewRun
from ..runtime.definitions import Workflow
from ..runtime.tasks import require_context
from .document import WORKFLOW_PREFIX, Blueprint, parse_trusted, workflow_name
from .requirements import required_capabilities


def child_payload(source: str, filename: str, value: Any) -> dict[str, Any]:
    return {"source": source, "filename": filename, "input": value}


async def interpret(run: dict[str, Any]) -> Any:
    """The body of every blueprint run: parse the carried document and walk it."""
    from .interpreter import Interpreter

    blueprint = parse_trusted(run["source"], run.get("filename") or "<string>")
    ctx = require_context("blueprint")
    # Functions and task kinds are looked up in the app of the worker running the run.
    return await Interpreter(blueprint, run.get("input"), ctx.run_id, ctx.host.app).run()


@functools.cache
def blueprint_workflow(namespace: str, name: str, version: str = "") -> Workflow[Any, Any]:
    """The workflow object of a blueprint's runs (``version`` is what new runs record)."""

    async def run_blueprint(run: dict[str, Any]) -> Any:
        return await interpret(run)

    return Workflow(run_blueprint, name=workflow_name(namespace, name), version=version or "-")


def _resolve(full_name: str) -> Workflow[Any, Any] | None:
    namespace, _, name = full_name.removeprefix(WORKFLOW_PREFIX).partition("/")
    if not namespace or not name:
        return None
    return blueprint_workflow(namespace, name)


BUILTINS.family(WORKFLOW_PREFIX, _resolve)


def new_blueprint_run(
    blueprint: Blueprint,
    value: Any = None,
    run_id: str | None = None,
    queue: str = "default",
    priority: int = 0,
    concurrency_key: str | None = None,
) -> NewRun:
    """The :class:`NewRun` that starts ``blueprint`` with input ``value``.

    The run records the functions and task kinds its document calls, so that only
    workers whose app registers them all claim it.
    """
    payload = child_payload(blueprint.source, blueprint.filename, value)
    return NewRun(
        run_id=run_id or uuid.uuid4().hex,
        workflow=blueprint.workflow_name,
        input=dumps([[payload], {}], f"input of blueprint {blueprint.ref}"),
        version=blueprint.version,
        queue=queue,
        priority=priority,
        concurrency_key=concurrency_key,
        requires=required_capabilities(blueprint.document),
    )


async def lookup_source(namespace: str, name: str, version: str | None) -> dict[str, Any]:
    """Step body of ``run: workflow``: the published document to start as a child."""
    from ..worker.services import require_store

    record = await require_store("run: workflow").get_blueprint(namespace, name, version)
    if record is None:
        wanted = f"{namespace}/{name}" + (f":{version}" if version else "")
        raise BlueprintFault.standard(
            "configuration",
            404,
            f"no published blueprint {wanted}: publish it with `legato blueprint publish`",
        )
    return {"source": record.source, "filename": f"{name}.yaml", "version": record.version}
