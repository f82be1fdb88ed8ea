"""The blueprint interpreter: walks a DSL document inside an ordinary durable run.

Everything that touches the outside world, and every leaf task's result, is a journalled
step named after the task's JSON pointer (``/do/0/getPet``), so a run killed mid-way
resumes on any worker without calling anything twice, and its history reads as the
document does. Control flow (``do``, ``for``, ``fork``, ``try``, ``then``) and the jq data
flow are computed in the run from journalled values, and every expression result that
decides a path is journalled itself (see :mod:`.determinism`), so a replay follows the path
the first execution took.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..apps import App
from ..errors import ERROR_TYPES, BlueprintFault
from ..records import EntryKind
from ..runtime import commands
from ..runtime.tasks import require_context
from .catching import run_try
from .determinism import RunRecorder, current_task
from .document import Blueprint
from .durations import parse_duration
from .expressions import evaluate_value, interpolate, truthy
from .schemas import check_schema


class EndWorkflow(Exception):
    """``then: end``: stop the whole run gracefully with ``output``."""

    def __init__(self, output: Any) -> None:
        super().__init__("then: end")
        self.output = output


@dataclass
class Scope:
    """Names bound by enclosing tasks (``$item`` of a ``for``, ``$error`` of a ``catch``)
    and the deadline (workflow clock seconds) of the tightest enclosing timeout."""

    names: dict[str, Any]
    deadline: float | None = None

    def bind(self, **names: Any) -> Scope:
        return Scope({**self.names, **names}, self.deadline)

    def within(self, deadline: float | None) -> Scope:
        if deadline is None or (self.deadline is not None and self.deadline <= deadline):
            return self
        return Scope(self.names, deadline)


_CONTEXT: contextvars.ContextVar[Any] = contextvars.ContextVar("legato_blueprint_context")
"""``$context`` of the running blueprint. A context variable, not an attribute, so each
``fork`` branch (a task of its own) exports into its own copy; the fork then merges the
copies in branch order, which a replay reproduces whatever order branches finish in."""

CONTINUE = "continue"
EXIT = "exit"
END = "end"


class Interpreter:
    """One run of one blueprint. Created afresh on every replay; holds no I/O itself."""

    def __init__(self, blueprint: Blueprint, raw_input: Any, run_id: str, app: App) -> None:
        from .leaf_tasks import LeafTasks
        from .secrets import load_secrets

        self.app = app  # where the functions and task kinds it calls are registered
        self.blueprint = blueprint
        self.document = blueprint.document
        self.use: dict[str, Any] = self.document.get("use") or {}
        self.context = {}
        self.consumed_events: set[str] = set()  # ids of events a listen consumed
        self.secrets = load_secrets(self.use.get("secrets") or [], blueprint.namespace)
        self.secret_values = _secret_strings(self.secrets)
        self.workflow_descriptor: dict[str, Any] = {
            "id": run_id,
            "definition": self.document,
            "input": raw_input,
        }
        self.runtime_descriptor = {"name": "legato", "version": _version(), "metadata": {}}
        self.raw_input = raw_input
        self.leaves = LeafTasks(self)
        self.recorder: RunRecorder | None = None

    @property
    def context(self) -> Any:
        return _CONTEXT.get()

    @context.setter
    def context(self, value: Any) -> None:
        _CONTEXT.set(value)

    # -- variables ------------------------------------------------------------------------
    def variables(
        self, scope: Scope, task: Mapping[str, Any] | None, **extra: Any
    ) -> dict[str, Any]:
        """The runtime arguments of an expression (see the DSL's argument table)."""
        values: dict[str, Any] = {
            "context": self.context,
            "secrets": self.secrets,
            "workflow": self.workflow_descriptor,
            "runtime": self.runtime_descriptor,
            "task": dict(task) if task is not None else None,
        }
        values.update(scope.names)
        values.update(extra)
        return values

    # -- the run --------------------------------------------------------------------------
    async def run(self) -> Any:
        self.recorder = RunRecorder(require_context("blueprint"), self.blueprint)
        self.recorder.install()
        started = commands.now()
        self.workflow_descriptor["startedAt"] = _datetime_descriptor(started.timestamp())
        scope = Scope({})
        timeout = self.document.get("timeout")
        if timeout is not None:
            scope = scope.within(started.timestamp() + self.timeout_seconds(timeout))
        spec_input = self.document.get("input") or {}
        check_schema(spec_input.get("schema"), self.raw_input, "workflow input", "/input")
        data = self.raw_input
        if spec_input.get("from") is not None:
            data = self.evaluate(spec_input["from"], data, self.variables(scope, None), "/input")
        try:
            output = await self.run_list(self.document["do"], "/do", data, scope)
        except EndWorkflow as end:
            output = end.output
        spec_output = self.document.get("output") or {}
        if spec_output.get("as") is not None:
            output = self.evaluate(
                spec_output["as"], output, self.variables(scope, None), "/output"
            )
        check_schema(spec_output.get("schema"), output, "workflow output", "/output")
        return output

    async def run_list(self, tasks: list[Any], pointer: str, data: Any, scope: Scope) -> Any:
        """Run a task list in order, following ``then`` directives; return the last output."""
        names = [next(iter(item)) for item in tasks]
        index = 0
        while index < len(tasks):
            name = names[index]
            task = tasks[index][name]
            data, then = await self.run_task(name, task, f"{pointer}/{index}/{name}", data, scope)
            if then == CONTINUE:
                index += 1
            elif then == EXIT:
                return data
            elif then == END:
                raise EndWorkflow(data)
            else:
                index = names.index(then)
        return data

    async def run_task(
        self,
        name: str,
        task: dict[str, Any],
        pointer: str,
        raw_input: Any,
        scope: Scope,
        extended: bool = True,
    ) -> tuple[Any, str]:
        """One task with its data flow: if, input, the task, output, export, then."""
        descriptor: dict[str, Any] = {
            "name": name,
            "reference": pointer,
            "definition": task,
            "input": raw_input,
        }
        running = current_task.set(pointer)
        try:
            base = self.variables(scope, descriptor)
            if "if" in task and not self.decide(
                pointer, "if", functools.partial(self.holds, task["if"], raw_input, base, pointer)
            ):
                return raw_input, CONTINUE
            spec_input = task.get("input") or {}
            check_schema(spec_input.get("schema"), raw_input, "task input", pointer)
            data = raw_input
            if spec_input.get("from") is not None:
                data = self.evaluate(spec_input["from"], raw_input, base, pointer)
            if task.get("timeout") is not None:
                limit = self.timeout_seconds(task["timeout"])
                scope = scope.within(commands.now().timestamp() + limit)
            variables = {**base, "input": data}
            if extended:
                raw_output, flow = await self.with_extensions(
                    name, task, pointer, data, scope, variables, descriptor
                )
            else:
                raw_output, flow = await self.execute(name, task, pointer, data, scope, variables)
            descriptor["output"] = raw_output
            # The task may have exported into $context: later expressions see it now.
            variables = {**variables, "context": self.context, "task": dict(descriptor)}
            output = raw_output
            spec_output = task.get("output") or {}
            if spec_output.get("as") is not None:
                output = self.evaluate(spec_output["as"], raw_output, variables, pointer)
            check_schema(spec_output.get("schema"), output, "task output", pointer)
            export = task.get("export") or {}
            if export.get("as") is not None:
                self.context = self.evaluate(
                    export["as"], output, {**variables, "output": output}, pointer
                )
                check_schema(export.get("schema"), self.context, "exported context", pointer)
        except BlueprintFault as fault:
            fault.problem.setdefault("instance", pointer)
            raise
        finally:
            current_task.reset(running)
        return output, flow or str(task.get("then") or CONTINUE)

    async def with_extensions(
        self,
        name: str,
        task: dict[str, Any],
        pointer: str,
        data: Any,
        scope: Scope,
        variables: dict[str, Any],
        descriptor: dict[str, Any],
    ) -> tuple[Any, str | None]:
        """Run ``use.extensions`` that apply around the task, then the task itself."""
        applying = []
        for index, item in enumerate(self.use.get("extensions") or []):
            for ext_name, ext in item.items():
                if not _extends(ext.get("extend", "all"), task):
                    continue
                when = ext.get("when")
                if when is not None and not self.decide(
                    pointer,
                    f"extensions/{index}/{ext_name}",
                    functools.partial(self.holds, when, data, variables),
                ):
                    continue
                applying.append((index, ext_name, ext))
        for index, ext_name, ext in applying:
            if ext.get("before"):
                where = f"/use/extensions/{index}/{ext_name}/before"
                result, exited = await self.run_extension(ext["before"], where, data, scope)
                if exited:
                    return result, None
        output, flow = await self.execute(name, task, pointer, data, scope, variables)
        for index, ext_name, ext in applying:
            if ext.get("after"):
                where = f"/use/extensions/{index}/{ext_name}/after"
                output, _exited = await self.run_extension(ext["after"], where, output, scope)
        return output, flow

    async def run_extension(
        self, tasks: list[Any], pointer: str, data: Any, scope: Scope
    ) -> tuple[Any, bool]:
        """Run an extension's task list; True if a task said ``then: exit`` (skip the task)."""
        names = [next(iter(item)) for item in tasks]
        for index, name in enumerate(names):
            task = tasks[index][name]
            where = f"{pointer}/{index}/{name}"
            # Extensions do not extend their own tasks (an 'extend: all' would never end).
            data, then = await self.run_task(name, task, where, data, scope, extended=False)
            if then == EXIT:
                return data, True
            if then == END:
                raise EndWorkflow(data)
        return data, False

    # -- task kinds -----------------------------------------------------------------------
    async def execute(
        self,
        name: str,
        task: dict[str, Any],
        pointer: str,
        data: Any,
        scope: Scope,
        variables: dict[str, Any],
    ) -> tuple[Any, str | None]:
        """The task's own work; returns its raw output and a flow directive (switch)."""
        self.check_deadline(scope, pointer)
        if "do" in task and "for" not in task:
            return await self.run_list(task["do"], f"{pointer}/do", data, scope), None
        if "for" in task:
            return await self.run_for(task, pointer, data, scope, variables), None
        if "fork" in task:
            return await self.run_fork(task["fork"], pointer, data, scope), None
        if "switch" in task:
            return await self.run_switch(task["switch"], pointer, data, variables)
        if "try" in task:
            return await run_try(self, task, pointer, data, scope, variables), None
        return await self.leaves.execute(name, task, pointer, data, scope, variables), None

    async def run_for(
        self,
        task: dict[str, Any],
        pointer: str,
        data: Any,
        scope: Scope,
        variables: dict[str, Any],
    ) -> Any:
        loop = task["for"]
        item_name = loop.get("each") or "item"
        index_name = loop.get("at") or "index"

        def collection() -> list[Any]:
            items = self.evaluate(loop["in"], data, variables, pointer)
            if isinstance(items, Mapping):
                items = list(items.values())
            if not isinstance(items, list):
                raise BlueprintFault.standard(
                    "expression", 400, f"for.in must give an array, got {type(items).__name__}"
                )
            return items

        for index, item in enumerate(self.decide(pointer, "for.in", collection)):
            inner = scope.bind(**{item_name: item, index_name: index})
            if task.get("while") is not None:
                current = {**variables, **inner.names, "context": self.context}
                keep = functools.partial(self.holds, task["while"], data, current, pointer)
                if not self.decide(pointer, "while", keep):
                    break
            data = await self.run_list(task["do"], f"{pointer}/do", data, inner)
        return data

    async def run_fork(self, fork: dict[str, Any], pointer: str, data: Any, scope: Scope) -> Any:
        branches = fork["branches"]
        names = [next(iter(item)) for item in branches]
        before = self.context
        tasks: list[asyncio.Task[tuple[Any, Any]]] = []

        async def branch(index: int) -> tuple[Any, Any]:
            name = names[index]
            where = f"{pointer}/fork/branches/{index}/{name}"
            try:
                output, _then = await self.run_task(name, branches[index][name], where, data, scope)
            except Exception:
                # One branch failed: the fork fails, so its siblings must stop now rather
                # than call or export anything after the error was handled.
                for other in tasks:
                    if other is not asyncio.current_task():
                        other.cancel()
                raise
            return output, self.context

        tasks.extend(asyncio.ensure_future(branch(i)) for i in range(len(branches)))
        if fork.get("compete"):
            return await self.compete(tasks, pointer)
        results = await asyncio.gather(*tasks, return_exceptions=True)
        for result in results:  # the first failure in branch order, not a cancelled sibling
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result
        for result in results:
            if isinstance(result, BaseException):
                raise result
        outputs = [result[0] for result in results]  # type: ignore[index]
        changed = [result[1] for result in results if result[1] is not before]  # type: ignore[index]
        if changed:
            self.context = changed[-1]  # exports merge in branch order
        return outputs

    async def compete(self, tasks: list[asyncio.Task[tuple[Any, Any]]], pointer: str) -> Any:
        """``compete: true``: the first branch to finish wins; the others are cancelled.

        The winner is journalled at once (no other task runs in between), so a replay,
        where branches finish in another order, keeps the branch that won the first time.
        """
        ctx = require_context("fork")
        first = await ctx.first_done(tasks)
        winner = int(ctx.recorded(EntryKind.DECISION, lambda: first, f"{pointer}/fork"))
        for index, task in enumerate(tasks):
            if index != winner:
                task.cancel()
        try:
            output, context = await tasks[winner]
        finally:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.context = context
        return output

    async def run_switch(
        self, cases: list[Any], pointer: str, data: Any, variables: dict[str, Any]
    ) -> tuple[Any, str | None]:

        def choose() -> str | None:
            for item in cases:
                case_name, case = next(iter(item.items()))
                when = case.get("when")
                if when is None or self.holds(when, data, variables, pointer):
                    return str(case_name)
            return None

        chosen = self.decide(pointer, "switch", choose)
        for item in cases:
            case_name, case = next(iter(item.items()))
            if case_name == chosen:
                return data, str(case.get("then") or CONTINUE)
        return data, None

    # -- decisions ------------------------------------------------------------------------
    def decide(self, pointer: str, what: str, produce: Callable[[], Any]) -> Any:
        """``produce``'s result, journalled as decision ``pointer#what`` (see .determinism)."""
        assert self.recorder is not None, "the interpreter decides only inside run()"
        return self.recorder.decide(pointer, what, produce)

    def holds(
        self, expression: Any, data: Any, variables: Mapping[str, Any], pointer: str = ""
    ) -> bool:
        """jq's truth of ``expression``'s value."""
        return truthy(self.evaluate(expression, data, variables, pointer))

    # -- helpers --------------------------------------------------------------------------
    def evaluate(
        self, expression: Any, data: Any, variables: Mapping[str, Any], pointer: str = ""
    ) -> Any:
        try:
            return evaluate_value(expression, data, variables)
        except BlueprintFault as fault:
            if pointer:
                fault.problem.setdefault("instance", pointer)
            raise

    def evaluate_set(self, value: Any, data: Any, variables: Mapping[str, Any]) -> Any:
        """A ``set`` task's output: its map with expressions evaluated, or one expression."""
        if isinstance(value, str):
            return evaluate_value(value, data, variables)
        return interpolate(value, data, variables)

    def timeout_seconds(self, timeout: Any) -> float:
        if isinstance(timeout, str):
            timeout = (self.use.get("timeouts") or {})[timeout]
        return parse_duration(timeout["after"])

    def check_deadline(self, scope: Scope, pointer: str) -> None:
        if scope.deadline is not None and commands.now().timestamp() >= scope.deadline:
            raise BlueprintFault.standard(
                "timeout", 408, "the task's (or an enclosing task's) timeout has passed"
            )

    def remaining(self, scope: Scope) -> float | None:
        """Seconds left before the tightest enclosing timeout (None: no timeout)."""
        if scope.deadline is None:
            return None
        return max(0.001, scope.deadline - commands.now().timestamp())


_TASK_KINDS = (
    "call",
    "do",
    "emit",
    "fork",
    "listen",
    "raise",
    "run",
    "set",
    "switch",
    "try",
    "wait",
)


def _kind_of(task: Mapping[str, Any]) -> str:
    if "for" in task:
        return "for"
    for kind in _TASK_KINDS:
        if kind in task:
            return "composite" if kind == "do" else kind
    return "extension"


def _extends(extend: str, task: Mapping[str, Any]) -> bool:
    return extend == "all" or extend == _kind_of(task)


def _secret_strings(secrets: Any) -> tuple[str, ...]:
    """Every string (of 4 characters or more) inside the secrets, longest first."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str) and len(value) >= 4:
            found.add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(secrets)
    return tuple(sorted(found, key=len, reverse=True))


def _datetime_descriptor(stamp: float) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "iso8601": datetime.fromtimestamp(stamp, tz=UTC).isoformat().replace("+00:00", "Z"),
        "epoch": {"seconds": int(stamp), "milliseconds": int(stamp * 1000)},
    }


def _version() -> str:
    from .. import __version__

    return __version__


__all__ = ["ERROR_TYPES", "EndWorkflow", "Interpreter", "Scope"]
