"""``run`` tasks: another blueprint as a child run, or a shell command or script.

Shell commands and scripts run code from the document on the worker's host, so they are
refused unless the worker allows them for that blueprint: ``LEGATO_BLUEPRINT_PROCESSES``
(or :func:`allow_processes`) lists ``namespace/name`` patterns (``*`` wildcards), e.g.
``ops/*,billing/nightly-export``. Nothing is allowed by default. Only a published version
with the same content may run them. Both checks come before the process is spawned.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from ..errors import BlueprintFault, ChildRunError
from ..runtime import commands
from ..runtime.definitions import Workflow
from .expressions import interpolate

if TYPE_CHECKING:
    from .interpreter import Scope
    from .leaf_tasks import LeafTasks

_allowed: list[str] = []
_PRIVATE_ENV = ("LEGATO_SECRET_", "LEGATO_DB")
"""Environment a worker never hands to a shell or script: other blueprints' secrets and
the database URL (which may hold a password)."""

LANGUAGES = {"python": [sys.executable, "-c"], "js": ["node", "--input-type=module", "-e"]}
LANGUAGES["javascript"] = LANGUAGES["js"]


def allow_processes(*patterns: str) -> None:
    """Let blueprints matching ``patterns`` (``namespace/name``, ``*`` wildcards) run
    ``run: shell`` and ``run: script`` on this worker, in addition to the environment's."""
    _allowed.extend(patterns)


def processes_allowed(namespace: str, name: str) -> bool:
    patterns = [*_allowed, *os.environ.get("LEGATO_BLUEPRINT_PROCESSES", "").split(",")]
    ref = f"{namespace}/{name}"
    return any(p.strip() and fnmatch.fnmatchcase(ref, p.strip()) for p in patterns)


async def run_process(
    leaves: LeafTasks,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    variables: dict[str, Any],
) -> Any:
    run = task["run"]
    if "workflow" in run:
        return await run_workflow(leaves, run, pointer, data, scope, variables)
    blueprint = leaves.it.blueprint
    kind = "shell" if "shell" in run else "script"
    if kind not in run:
        raise BlueprintFault.standard(
            "configuration", 400, "run: container is not supported by Legato"
        )
    if not processes_allowed(blueprint.namespace, blueprint.name):
        raise BlueprintFault.standard(
            "authorization",
            403,
            f"run: {kind} is not allowed for blueprint {blueprint.namespace}/{blueprint.name} "
            "on this worker: add it to LEGATO_BLUEPRINT_PROCESSES (e.g. "
            f"'{blueprint.namespace}/*') if it may run code on the worker's host",
        )
    spec = interpolate(run[kind], data, variables)
    if kind == "shell":
        argv = ["/bin/sh", "-c", str(spec["command"]), "sh"]
    else:
        language = str(spec.get("language", "")).lower()
        if language not in LANGUAGES:
            raise BlueprintFault.standard(
                "configuration", 400, f"script language {language!r}: use python or js"
            )
        if "code" not in spec:
            raise BlueprintFault.standard(
                "configuration", 400, "run: script needs inline code (source is not supported)"
            )
        argv = [*LANGUAGES[language], str(spec["code"])]
        if language != "python":
            argv.append("--")
    argv += [str(a) for a in _arguments(spec.get("arguments"))]
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV)}
    env = {**inherited, **{str(k): str(v) for k, v in (spec.get("environment") or {}).items()}}
    stdin = spec.get("stdin")
    returns = str(run.get("return") or "stdout")

    async def execute() -> Any:
        # Both checks (the allow-list above, the published-only one here) come before the
        # spawn: a started process does its work whether or not the run is refused later.
        # This one reads the store, so it runs inside the step: its verdict is journalled
        # and a replay reuses it.
        if not await _is_published(blueprint):
            raise BlueprintFault.standard(
                "authorization",
                403,
                f"run: {kind} runs only from published blueprints: publish "
                f"{blueprint.ref} (`legato blueprint publish`) and start that version",
            )
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
        )
        text = None if stdin is None else (stdin if isinstance(stdin, str) else json.dumps(stdin))
        try:
            out, err = await process.communicate(text.encode() if text is not None else None)
        except BaseException:  # a timeout or a cancel: the process must not run on
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        code = process.returncode or 0
        result: dict[str, Any] = {
            "code": code,
            "stdout": out.decode(errors="replace"),
            "stderr": err.decode(errors="replace"),
        }
        if code != 0 and returns not in ("code", "all"):
            raise BlueprintFault.standard(
                "runtime", 500, f"{kind} exited with code {code}: {result['stderr'][-500:]}"
            )
        return result

    if run.get("await") is False:
        raise BlueprintFault.standard(
            "configuration", 400, "run with await: false is not supported by Legato yet"
        )
    result = await leaves.effect(pointer, execute, timeout=leaves.it.remaining(scope))
    if returns == "all":
        return result
    if returns == "none":
        return None
    return result[returns]


async def _is_published(blueprint: Any) -> bool:
    """The allow-list names reviewed, published blueprints: a draft that merely claims
    an allowed namespace in its header does not pass."""
    from ..worker.services import require_store

    record = await require_store("run: shell").get_blueprint(
        blueprint.namespace, blueprint.name, blueprint.version
    )
    return record is not None and record.digest == blueprint.digest


def _arguments(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={v}" for k, v in value.items()]
    return list(value)


async def run_workflow(
    leaves: LeafTasks,
    run: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    variables: dict[str, Any],
) -> Any:
    """A child run of a published blueprint, pinned to the version found when it starts."""
    from .document import parse_trusted
    from .requirements import required_capabilities
    from .runs import blueprint_workflow, child_payload, lookup_source

    target = run["workflow"]
    namespace = str(target["namespace"])
    name = str(target["name"])
    version = target.get("version")
    version = None if version in (None, "latest") else str(version)
    found = await leaves.effect(
        f"{pointer}#lookup", lambda: lookup_source(namespace, name, version)
    )
    child_input = data
    if target.get("input") is not None:
        child_input = (
            leaves.it.evaluate(target["input"], data, variables, pointer)
            if isinstance(target["input"], str)
            else interpolate(target["input"], data, variables)
        )
    pinned = blueprint_workflow(namespace, name, str(found["version"]))
    # The child run gets what is left of the task's timeout, and requires what its own
    # document calls (the child may be claimed by another app's worker than its parent).
    document = parse_trusted(found["source"], found["filename"]).document
    workflow = Workflow(
        pinned.fn,
        name=pinned.name,
        version=pinned.version,
        timeout=leaves.it.remaining(scope),
        requires=required_capabilities(document),
    )
    if run.get("await") is False:
        raise BlueprintFault.standard(
            "configuration", 400, "run with await: false is not supported by Legato yet"
        )
    try:
        return await commands.child(
            workflow, child_payload(found["source"], found["filename"], child_input)
        )
    except ChildRunError as exc:
        raise leaves.child_fault(exc) from exc
