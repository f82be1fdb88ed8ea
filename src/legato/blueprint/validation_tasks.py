"""Validation of tasks: task lists, every task type, and the flow between sibling tasks.

A task list is where most mistakes hide: a task with two types after a bad indent, a
``then`` that names a task of another list, two tasks chasing each other forever. Each
list is checked as a whole after its tasks, so that ``then`` targets and loops are
judged against the real set of siblings.

Variables a task binds for the tasks inside it (a ``for``'s ``each``/``at``, a catch's
``as``, a listen ``foreach``'s ``item``/``at``) are passed down as the scope, so that an
expression such as ``$pet.id`` compiles where, and only where, ``$pet`` exists.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .source import Path, format_path
from .validation_calls import CallChecker
from .validation_core import Scope, suggestion, type_name

TASK_TYPES = (
    "call",
    "do",
    "emit",
    "for",
    "fork",
    "listen",
    "raise",
    "run",
    "set",
    "switch",
    "try",
    "wait",
)
BASE_FIELDS = ("if", "input", "output", "export", "timeout", "then", "metadata")
DIRECTIVES = ("continue", "exit", "end")
_TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "call": ("call", "with"),
    "for": ("for", "while", "do"),
    "listen": ("listen", "foreach"),
    "try": ("try", "catch"),
}
_LANGUAGES = ("javascript", "js", "python")
_PROCESSES = ("container", "script", "shell", "workflow")


class TaskChecker(CallChecker):
    """Checks task lists and tasks; the document level builds on it."""

    # -- lists ----------------------------------------------------------------------------
    def task_list(self, value: Any, path: Path, scope: Scope) -> None:
        """A list of ``- name: task`` items; names unique, flow between them sound."""
        if not isinstance(value, list):
            self.report(
                path,
                f"expected a list of tasks ('- taskName:' items), got {type_name(value)}",
            )
            return
        named: list[tuple[int, str, Any]] = []
        first: dict[str, int] = {}
        for i, item in enumerate(value):
            where = (*path, i)
            if not isinstance(item, dict):
                self.report(
                    where,
                    f"expected a task ('- taskName:' followed by its definition), "
                    f"got {type_name(item)}",
                )
                continue
            if len(item) != 1:
                keys = ", ".join(map(str, item))
                self.report(
                    where,
                    f"a task list item has one key, the task's name, but this one has "
                    f"{len(item)} ({keys}); indent the task's fields under its name",
                )
                continue
            ((name, task),) = item.items()
            if not isinstance(name, str):
                self.report(where, f"a task name must be a string, got {type_name(name)}")
                continue
            if name in first:
                self.report(
                    (*where, name),
                    f"duplicate task name '{name}' (also {_index_path(path, first[name])}); "
                    "task names must be unique within a list",
                    at_key=True,
                )
            else:
                first[name] = i
            named.append((i, name, task))
        siblings = {name for _, name, _ in named}
        for i, name, task in named:
            self.task(task, (*path, i, name), scope, siblings)
        self.loops(named, path)

    def task(self, value: Any, path: Path, scope: Scope, siblings: Collection[str] | None) -> None:
        """One task. ``siblings``: names its ``then`` may target (None: do not check)."""
        if value is None:
            self.report(
                path, "the task is empty: give it a type such as call, set or do", at_key=True
            )
            return
        task = self.mapping(value, path)
        if task is None:
            return
        kind = self.task_type(task, path)
        if kind is not None:
            self.fields(task, path, (*BASE_FIELDS, *_TYPE_FIELDS.get(kind, (kind,))))
        self.base(task, path, scope, siblings)
        if kind == "call":
            self.call(task, path, scope)
        elif kind == "do":
            self.task_list(task["do"], (*path, "do"), scope)
        elif kind == "emit":
            self.emit(task["emit"], (*path, "emit"), scope)
        elif kind == "for":
            self.for_(task, path, scope)
        elif kind == "fork":
            self.fork(task["fork"], (*path, "fork"), scope)
        elif kind == "listen":
            self.listen(task, path, scope)
        elif kind == "raise":
            self.raise_(task["raise"], (*path, "raise"), scope)
        elif kind == "run":
            self.run(task["run"], (*path, "run"), scope)
        elif kind == "set":
            self.set_(task["set"], (*path, "set"), scope)
        elif kind == "switch":
            self.switch(task["switch"], (*path, "switch"), scope, siblings)
        elif kind == "try":
            self.try_(task, path, scope)
        elif kind == "wait":
            self.duration(task["wait"], (*path, "wait"), scope)

    def task_type(self, task: dict[str, Any], path: Path) -> str | None:
        present = [key for key in TASK_TYPES if key in task]
        if "for" in present and "do" in present:
            present.remove("do")  # a for loop's body
        if len(present) == 1:
            return present[0]
        if present:
            self.report(
                path,
                f"a task has one type, but this one has {len(present)}: {', '.join(present)}; "
                "split it into separate tasks",
                at_key=True,
            )
            return None
        unknown = [key for key in task if key not in BASE_FIELDS]
        for key in unknown:
            hint = (
                suggestion(str(key), TASK_TYPES) or f" (expected one of: {', '.join(TASK_TYPES)})"
            )
            self.report((*path, key), f"unknown task type '{key}'{hint}", at_key=True)
        if not unknown:
            self.report(
                path,
                "the task has no type: give it one of " + ", ".join(TASK_TYPES),
                at_key=True,
            )
        return None

    def base(
        self, task: dict[str, Any], path: Path, scope: Scope, siblings: Collection[str] | None
    ) -> None:
        """The properties every task may have."""
        if "if" in task:
            self.expression(task["if"], (*path, "if"), scope)
        for key, transform in (("input", "from"), ("output", "as"), ("export", "as")):
            if key in task:
                self.data_stage(task[key], (*path, key), transform, scope)
        if "timeout" in task:
            self.timeout(task["timeout"], (*path, "timeout"), scope)
        if "then" in task:
            self.directive(task["then"], (*path, "then"), siblings)
        if "metadata" in task:
            self.mapping(task["metadata"], (*path, "metadata"))

    def directive(self, value: Any, path: Path, siblings: Collection[str] | None) -> None:
        """A flow directive: continue, exit, end, or a sibling task's name."""
        if self.string(value, path) is None:
            return
        if value in DIRECTIVES or siblings is None or value in siblings:
            return
        self.report(
            path,
            f"no task named '{value}' in this list{suggestion(value, [*siblings, *DIRECTIVES])}; "
            "'then' takes continue, exit, end or the name of a task in the same list",
        )

    def loops(self, named: list[tuple[int, str, Any]], path: Path) -> None:
        """Report chains of sibling tasks that run round forever (no switch, if or end)."""
        position: dict[str, int] = {}
        for k, (_, name, _) in enumerate(named):
            position.setdefault(name, k)

        def successor(at: int) -> int | None:
            task = named[at][2]
            if not isinstance(task, dict) or _may_leave(task):
                return None
            then = task.get("then", "continue")
            if then == "continue":
                return at + 1 if at + 1 < len(named) else None
            return position.get(then) if isinstance(then, str) else None

        state = [0] * len(named)  # 0: not seen, 1: on the current chain, 2: done
        for start in range(len(named)):
            chain: list[int] = []
            step: int | None = start
            while step is not None and state[step] == 0:
                state[step] = 1
                chain.append(step)
                step = successor(step)
            if step is not None and state[step] == 1:
                self._loop(named, path, chain[chain.index(step) :])
            for seen in chain:
                state[seen] = 2

    def _loop(self, named: list[tuple[int, str, Any]], path: Path, cycle: list[int]) -> None:
        head = cycle.index(min(cycle))
        cycle = cycle[head:] + cycle[:head]
        names = [named[k][1] for k in cycle]
        index, name, _ = named[cycle[-1]]  # its `then` jumps back to the first task
        self.report(
            (*path, index, name, "then"),
            f"tasks {' -> '.join([*names, names[0]])} form a loop with no way out; "
            "add a switch (or an 'if') that leaves it, or a then: exit or end",
        )

    # -- task types -----------------------------------------------------------------------
    def emit(self, value: Any, path: Path, scope: Scope) -> None:
        emit = self.mapping(value, path)
        if emit is None:
            return
        self.fields(emit, path, ("event",), ("event",))
        event = emit.get("event")
        if event is not None and self.mapping(event, (*path, "event")) is not None:
            self.fields(event, (*path, "event"), ("with",), ("with",))
            if "with" in event:
                self.event_properties(
                    event["with"], (*path, "event", "with"), scope, required=("source", "type")
                )

    def for_(self, task: dict[str, Any], path: Path, scope: Scope) -> None:
        names = ["item", "index"]
        loop = self.mapping(task["for"], (*path, "for"))
        if loop is not None:
            where = (*path, "for")
            self.fields(loop, where, ("each", "in", "at"), ("in",))
            for k, key in enumerate(("each", "at")):
                if key in loop:
                    names[k] = self.variable(loop[key], (*where, key)) or names[k]
            if "in" in loop:
                self.expression(loop["in"], (*where, "in"), scope)
        inner = (*scope, *names)
        if "while" in task:
            self.expression(task["while"], (*path, "while"), inner)
        if "do" not in task:
            self.report(path, "missing required field 'do'", at_key=True)
        else:
            self.task_list(task["do"], (*path, "do"), inner)

    def fork(self, value: Any, path: Path, scope: Scope) -> None:
        fork = self.mapping(value, path)
        if fork is None:
            return
        self.fields(fork, path, ("branches", "compete"), ("branches",))
        if "branches" in fork:
            self.task_list(fork["branches"], (*path, "branches"), scope)
        if "compete" in fork:
            self.boolean(fork["compete"], (*path, "compete"))

    def listen(self, task: dict[str, Any], path: Path, scope: Scope) -> None:
        listen = self.mapping(task["listen"], (*path, "listen"))
        if listen is not None:
            where = (*path, "listen")
            self.fields(listen, where, ("to", "read"), ("to",))
            if "to" in listen:
                self.consumption(listen["to"], (*where, "to"), scope)
            if "read" in listen:
                self.choice(listen["read"], (*where, "read"), ("data", "envelope", "raw"))
        if "foreach" in task:
            self.iterator(task["foreach"], (*path, "foreach"), scope)

    def iterator(self, value: Any, path: Path, scope: Scope) -> None:
        """What to do with each consumed event: ``item``/``at`` name it for the tasks."""
        iterator = self.mapping(value, path)
        if iterator is None:
            return
        self.fields(iterator, path, ("item", "at", "do", "output", "export"))
        names = ["item", "index"]
        for k, key in enumerate(("item", "at")):
            if key in iterator:
                names[k] = self.variable(iterator[key], (*path, key)) or names[k]
        inner = (*scope, *names)
        if "do" in iterator:
            self.task_list(iterator["do"], (*path, "do"), inner)
        for key in ("output", "export"):
            if key in iterator:
                self.data_stage(iterator[key], (*path, key), "as", inner)

    def raise_(self, value: Any, path: Path, scope: Scope) -> None:
        found = self.mapping(value, path)
        if found is None:
            return
        self.fields(found, path, ("error",), ("error",))
        if isinstance(found.get("error"), str):
            self.reference(found["error"], (*path, "error"), "errors")
        elif "error" in found:
            self.error(found["error"], (*path, "error"), scope)

    def run(self, value: Any, path: Path, scope: Scope) -> None:
        run = self.mapping(value, path)
        if run is None:
            return
        self.fields(run, path, (*_PROCESSES, "await", "return"))
        if "await" in run:
            self.boolean(run["await"], (*path, "await"))
        if "return" in run:
            self.choice(
                run["return"], (*path, "return"), ("stdout", "stderr", "code", "all", "none")
            )
        process = self.one_of(run, path, _PROCESSES)
        if process == "container":
            self.unsupported((*path, "container"), "run: container", at_key=True)
            return
        if process is None:
            return
        where = (*path, process)
        spec = self.mapping(run[process], where)
        if spec is None:
            return
        if process == "workflow":
            self.fields(
                spec, where, ("namespace", "name", "version", "input"), ("namespace", "name")
            )
            for key in ("namespace", "name", "version"):
                if key in spec:
                    self.string(spec[key], (*where, key))
            if "input" in spec:
                self.scan(spec["input"], (*where, "input"), scope)
            return
        common = ("stdin", "arguments", "environment")
        if process == "shell":
            self.fields(spec, where, ("command", *common), ("command",))
            if "command" in spec:
                self.string(spec["command"], (*where, "command"), scope)
        else:
            self.fields(spec, where, ("language", "code", "source", *common), ("language",))
            language = spec.get("language")
            if isinstance(language, str) and language.lower() in _LANGUAGES:
                pass  # as the runtime reads it: any case
            elif "language" in spec:
                self.choice(language, (*where, "language"), _LANGUAGES)
            source = self.one_of(spec, where, ("code", "source"))
            if source == "code":
                self.string(spec["code"], (*where, "code"))
            elif source == "source":
                self.unsupported((*where, "source"), "run: script source", at_key=True)
        if "stdin" in spec:
            self.string(spec["stdin"], (*where, "stdin"), scope)
        if "arguments" in spec:
            self.arguments(spec["arguments"], (*where, "arguments"), scope)
        if "environment" in spec and self.mapping(spec["environment"], (*where, "environment")):
            self.scan(spec["environment"], (*where, "environment"), scope)

    def arguments(self, value: Any, path: Path, scope: Scope) -> None:
        """A process's argv: a list of values, or a mapping passed as ``key=value``."""
        if isinstance(value, dict):
            self.scan(value, path, scope)
            return
        if not isinstance(value, list):
            self.report(path, f"expected a list of arguments, got {type_name(value)}")
            return
        for i, item in enumerate(value):
            if isinstance(item, dict | list):
                self.report((*path, i), f"expected a string, got {type_name(item)}")
            else:
                self.scan(item, (*path, i), scope)

    def set_(self, value: Any, path: Path, scope: Scope) -> None:
        if isinstance(value, str):
            if not self.maybe_expression(value, path, scope):
                self.report(path, "expected a mapping of values, or a ${ } expression")
        elif isinstance(value, dict):
            if not value:
                self.report(path, "nothing to set: give at least one value")
            self.scan(value, path, scope)
        else:
            self.report(path, f"expected a mapping of values to set, got {type_name(value)}")

    def switch(
        self, value: Any, path: Path, scope: Scope, siblings: Collection[str] | None
    ) -> None:
        if not isinstance(value, list) or not value:
            got = type_name(value) if not isinstance(value, list) else "an empty list"
            self.report(path, f"expected a list of cases ('- caseName:' items), got {got}")
            return
        defaults: list[str] = []
        for i, item in enumerate(value):
            where = (*path, i)
            if not isinstance(item, dict) or len(item) != 1:
                self.report(where, "expected a case: '- caseName:' followed by when/then")
                continue
            ((name, case),) = item.items()
            where = (*where, name)
            if self.mapping(case, where) is None:
                continue
            self.fields(case, where, ("when", "then"), ("then",))
            if "when" in case:
                self.expression(case["when"], (*where, "when"), scope)
            else:
                defaults.append(str(name))
                if len(defaults) == 2:
                    self.report(
                        where,
                        f"only one case may leave out 'when' (the default), but "
                        f"'{defaults[0]}' and '{name}' both do",
                        at_key=True,
                    )
            if "then" in case:
                self.directive(case["then"], (*where, "then"), siblings)

    def try_(self, task: dict[str, Any], path: Path, scope: Scope) -> None:
        self.task_list(task["try"], (*path, "try"), scope)
        if "catch" not in task:
            self.report(path, "missing required field 'catch'", at_key=True)
            return
        where = (*path, "catch")
        catch = self.mapping(task["catch"], where)
        if catch is None:
            return
        self.fields(catch, where, ("errors", "as", "when", "exceptWhen", "retry", "do"))
        errors = catch.get("errors")
        if errors is not None and self.mapping(errors, (*where, "errors")) is not None:
            self.fields(errors, (*where, "errors"), ("with",))
            if "with" in errors:
                self.error_filter(errors["with"], (*where, "errors", "with"))
        name = "error"
        if "as" in catch:
            name = self.variable(catch["as"], (*where, "as")) or name
        inner = (*scope, name)
        for key in ("when", "exceptWhen"):
            if key in catch:
                self.expression(catch[key], (*where, key), inner)
        if "retry" in catch:
            self.retry(catch["retry"], (*where, "retry"), inner)
        if "do" in catch:
            self.task_list(catch["do"], (*where, "do"), inner)


def _index_path(path: Path, index: int) -> str:
    return format_path((*path, index))


def _may_leave(task: Any) -> bool:
    """Whether a task can break a chain of tasks: it decides (switch, if), raises, or ends."""
    if isinstance(task, list):
        return any(_may_leave(item) for item in task)
    if not isinstance(task, dict):
        return False
    if any(key in task for key in ("switch", "if", "raise")) or task.get("then") == "end":
        return True
    return any(_may_leave(item) for item in task.values() if isinstance(item, dict | list))
