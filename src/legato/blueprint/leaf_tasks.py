"""Leaf tasks: the ones that do something (call, emit, listen, raise, run, set, wait).

Each runs as one journalled step named after the task's pointer. A step's function never
raises a DSL error: it returns ``{"fault": problem}`` instead, because a step's recorded
failure keeps only a type and message, while a ``try`` needs the whole problem on replay.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import BlueprintFault, ChildRunError, StepError
from ..runtime import commands
from ..runtime.definitions import Step
from .bindings import KIND_NAME, KindCall
from .durations import parse_duration
from .expressions import interpolate

if TYPE_CHECKING:
    from .interpreter import Interpreter, Scope


class LeafTasks:
    def __init__(self, interpreter: Interpreter) -> None:
        self.it = interpreter

    async def execute(
        self,
        name: str,
        task: dict[str, Any],
        pointer: str,
        data: Any,
        scope: Scope,
        variables: dict[str, Any],
    ) -> Any:
        if "set" in task:
            return await self.effect(
                pointer, lambda: _sync(self.it.evaluate_set(task["set"], data, variables))
            )
        if "call" in task:
            return await self.call(name, task, pointer, data, scope, variables)
        if "emit" in task:
            from .events import emit_event

            attributes = interpolate(task["emit"]["event"].get("with") or {}, data, variables)
            return await self.effect(
                pointer, lambda: emit_event(attributes), timeout=self.it.remaining(scope)
            )
        if "listen" in task:
            from .listening import listen

            return await listen(self, task, pointer, data, scope, variables)
        if "raise" in task:
            problem = self.problem_of(task["raise"]["error"], data, variables, pointer)
            recorded = await self.effect(pointer, lambda: _sync(problem))
            raise BlueprintFault(recorded)
        if "run" in task:
            from .processes import run_process

            return await run_process(self, task, pointer, data, scope, variables)
        if "wait" in task:
            value = interpolate(task["wait"], data, variables)
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise BlueprintFault.standard("configuration", 400, f"wait: {exc}") from exc
            await self.wait(seconds, scope)
            return data
        raise BlueprintFault.standard(
            "configuration", 400, f"task {name!r} has no kind Legato knows (validate it first)"
        )

    # -- steps ----------------------------------------------------------------------------
    async def effect(
        self,
        pointer: str,
        work: Callable[[], Awaitable[Any]],
        *shown: Any,
        timeout: float | None = None,
    ) -> Any:
        """Run ``work`` as a journalled step named ``pointer``; its DSL error is re-raised.

        ``shown`` are journalled as the step's arguments so the history shows what was
        asked (the request of a call); ``work`` itself closes over what it needs.
        """
        running = _WORK.set(work)
        try:
            outcome = await _task_step(pointer, timeout)(*shown)
        except StepError as exc:
            if exc.error_type.endswith("StepTimeout"):
                raise BlueprintFault.standard("timeout", 408, exc.error_message) from exc
            raise BlueprintFault.standard(
                "runtime", 500, f"{exc.error_type}: {exc.error_message}"
            ) from exc
        finally:
            _WORK.reset(running)
        if "fault" in outcome:
            raise BlueprintFault(outcome["fault"])
        return outcome.get("value")

    async def wait(self, seconds: float, scope: Scope) -> None:
        left = self.it.remaining(scope)
        if left is not None and left < seconds:
            await commands.sleep(left)
            raise BlueprintFault.standard("timeout", 408, "the wait outlasted its task's timeout")
        await commands.sleep(seconds)

    # -- call -----------------------------------------------------------------------------
    async def call(
        self,
        name: str,
        task: dict[str, Any],
        pointer: str,
        data: Any,
        scope: Scope,
        variables: dict[str, Any],
    ) -> Any:
        target = str(task["call"])
        arguments = interpolate(task.get("with") or {}, data, variables)
        timeout = self.it.remaining(scope)
        if target in ("http", "openapi"):
            return await self.http_call(target, arguments, pointer, data, timeout, variables)
        if KIND_NAME.match(target):
            return await self.extension_kind(target, name, pointer, arguments, data, timeout)
        defined = (self.it.use.get("functions") or {}).get(target)
        if defined is not None:
            return await self.function_task(name, defined, pointer, arguments, scope)
        registered = self.it.app.functions.get(target)
        if registered is not None:
            return await self.python_function(target, registered, arguments, pointer, timeout)
        if "@" in target or target.startswith(("http://", "https://", "file://")):
            from .catalogs import fetch_function

            definition = await self.effect(
                f"{pointer}#definition", lambda: fetch_function(target, self.it.use)
            )
            return await self.function_task(name, definition, pointer, arguments, scope)
        raise BlueprintFault.standard(
            "configuration",
            400,
            f"function {target!r} is not defined under use.functions and no Python function "
            f"is registered under that name in this worker's app {self.it.app.name!r} "
            "(@legato.blueprint.function, or @app.function)",
        )

    async def http_call(
        self,
        kind: str,
        arguments: Any,
        pointer: str,
        data: Any,
        timeout: float | None,
        variables: dict[str, Any],
    ) -> Any:
        authentications = self.it.use.get("authentications") or {}
        secrets = self.it.secrets

        async def perform() -> Any:
            if kind == "http":
                from .http import perform_http

                return await perform_http(
                    arguments,
                    task_input=data,
                    authentications=authentications,
                    secrets=secrets,
                    variables=variables,
                )
            from .openapi import perform_openapi

            return await perform_openapi(
                arguments,
                task_input=data,
                authentications=authentications,
                secrets=secrets,
                variables=variables,
            )

        shown = _redacted(arguments, self.it.secret_values)
        return await self.effect(pointer, perform, shown, timeout=timeout)

    async def function_task(
        self, name: str, definition: dict[str, Any], pointer: str, arguments: Any, scope: Scope
    ) -> Any:
        """A function from ``use.functions`` (or a catalog): run its task with ``with`` as input."""
        output, _then = await self.it.run_task(name, definition, pointer, arguments, scope)
        return output

    async def python_function(
        self,
        target: str,
        fn: Callable[..., Any],
        arguments: Any,
        pointer: str,
        timeout: float | None,
    ) -> Any:
        kwargs = dict(arguments) if isinstance(arguments, Mapping) else {"value": arguments}

        async def invoke() -> Any:
            if inspect.iscoroutinefunction(fn):
                return await fn(**kwargs)
            return await asyncio.to_thread(fn, **kwargs)

        shown = _redacted(kwargs, self.it.secret_values)
        return await self.effect(pointer, invoke, shown, timeout=timeout)

    async def extension_kind(
        self,
        target: str,
        name: str,
        pointer: str,
        arguments: Any,
        data: Any,
        timeout: float | None,
    ) -> Any:
        kind = self.it.app.kind(target)
        if kind is None:
            raise BlueprintFault.standard(
                "configuration",
                400,
                f"task kind {target!r} is not registered in this worker's app "
                f"{self.it.app.name!r}: import the module that defines it "
                "(@legato.blueprint.task_kind, or @app.task_kind) in the worker's app",
            )
        call = KindCall(name, pointer, dict(arguments or {}), data, timeout)
        return await kind.handler(call)

    # -- raise ----------------------------------------------------------------------------
    def problem_of(
        self, error: Any, data: Any, variables: dict[str, Any], pointer: str
    ) -> dict[str, Any]:
        if isinstance(error, str):
            error = (self.it.use.get("errors") or {})[error]
        problem = {key: interpolate(value, data, variables) for key, value in error.items()}
        problem.setdefault("instance", pointer)
        if isinstance(problem.get("status"), str) and problem["status"].isdigit():
            problem["status"] = int(problem["status"])
        return problem

    def child_fault(self, exc: ChildRunError) -> BlueprintFault:
        problem = (exc.error or {}).get("problem")
        if isinstance(problem, dict):
            return BlueprintFault(problem)
        if str((exc.error or {}).get("type", "")).endswith("RunTimeout"):
            return BlueprintFault.standard("timeout", 408, f"child run timed out: {exc}")
        return BlueprintFault.standard("runtime", 500, str(exc))


async def _sync(value: Any) -> Any:
    return value


_WORK: contextvars.ContextVar[Callable[[], Awaitable[Any]]] = contextvars.ContextVar(
    "legato_blueprint_step_work"
)
"""What the task step being called does. A step body starts in a copy of the context of
the workflow task that calls the step, so it finds the work its caller set here."""


async def _perform(*_shown: Any) -> Any:
    """The body of every task step: the caller's work, its DSL error kept as data.

    Annotated ``Any`` (it is a ``{"value"}`` or ``{"fault"}`` mapping): a step's result is
    validated against its annotation on every execution and replay, and plain JSON needs
    no validating.
    """
    try:
        return {"value": await _WORK.get()()}
    except BlueprintFault as fault:
        return {"fault": fault.problem}


@functools.lru_cache(maxsize=4096)
def _task_step(pointer: str, timeout: float | None) -> Step[Any, Any]:
    """The step of a task: one object per pointer (and timeout), not one per execution,
    since building a step reads its function's annotations, which costs more than a
    ``set`` task's whole evaluation."""
    return Step(_perform, name=pointer, timeout=timeout)


_SECRET_KEYS = ("password", "token", "clientSecret", "client_secret", "secret", "assertion")


def _redacted(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """``value`` with credentials masked, as shown in the journal.

    Fields named like credentials, the ``authentication`` block, and any text that
    contains the value of one of the blueprint's secrets are masked.
    """
    if isinstance(value, Mapping):
        return {
            k: "***" if k in _SECRET_KEYS else _redacted(v, secrets)
            for k, v in value.items()
            if k != "authentication"
        }
    if isinstance(value, list):
        return [_redacted(v, secrets) for v in value]
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
    return value
