"""Validation of blueprints: every problem in a DSL 1.0 document, each with file:line:column.

A blueprint is checked completely before it is published or run, so that a run never
fails half-way on something the text already showed: a misspelt key, a ``then`` to a
task that does not exist, a jq expression that does not compile, a reference to a retry
policy nobody defined, or a feature Legato does not run. Every problem is reported (not
just the first), pointing at the line of the offending value, e.g.::

    order.yaml:14:15 do[2].charge.call: unknown call type 'htp' (did you mean 'http'?)

The checks are written from the DSL reference, not generated from its JSON Schema: the
schema answers "is this valid" while an author needs "what is wrong, where, and what to
write instead". Features Legato does not support are listed in :data:`UNSUPPORTED`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .limits import CompileBudget, Limits, compile_budget
from .limits import current as current_limits
from .secrets import refusal as secret_refusal
from .source import Path, Problem, load_source
from .validation_core import UNSUPPORTED, type_name
from .validation_tasks import TaskChecker

__all__ = ["UNSUPPORTED", "Problem", "check_text", "validate"]

_NAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]+(?:-+[A-Za-z0-9]+)*$")
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*/,?#LW-]+$")
_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EXTENDS = (
    "all",
    "call",
    "composite",
    "emit",
    "extension",
    "for",
    "listen",
    "raise",
    "run",
    "set",
    "switch",
    "try",
    "wait",
)
_TOP_LEVEL = ("document", "input", "use", "do", "timeout", "output", "schedule", "evaluate")
_USE = (
    "authentications",
    "catalogs",
    "errors",
    "extensions",
    "functions",
    "retries",
    "secrets",
    "timeouts",
)


def validate(
    document: Any,
    positions: Mapping[Path, tuple[int, int]],
    filename: str,
    *,
    functions: Collection[str] | None = None,
    kinds: Mapping[str, Callable[[Any], list[str]]] | None = None,
) -> list[Problem]:
    """Every problem in ``document`` (a loaded DSL document), in the order of the text.

    ``positions`` maps paths to 1-based (line, column), as :func:`~.source.load_source`
    returns them; a path without a position is reported at its nearest ancestor's.

    ``functions``: the custom function names the runtime knows of. When given, ``call:``
    of a plain name that is neither under ``use.functions`` nor in ``functions`` is a
    problem; when None such names are accepted unless they look like a misspelt call
    type (``htp``). ``kinds``: the extension task kinds (``call: <namespace>:<kind>``)
    that exist, each with a check of the task's ``with`` value returning messages; a
    kind not in it is a problem (None means no kinds exist).
    """
    checker = _DocumentChecker(document, positions, filename, functions, kinds)
    checker.workflow()
    return sorted(checker.problems, key=lambda p: (p.line, p.column))


def check_text(
    text: str,
    filename: str = "<string>",
    *,
    functions: Collection[str] | None = None,
    kinds: Mapping[str, Callable[[Any], list[str]]] | None = None,
) -> tuple[Any, list[Problem]]:
    """Load and validate ``text``: ``(document, problems)``.

    ``document`` is None when the text is not YAML/JSON at all; otherwise it is the
    parsed document, even when ``problems`` is not empty.
    """
    bounds = current_limits()
    document, positions, problems = load_source(text, filename, bounds)
    if document is None:
        return None, problems
    token = compile_budget.set(CompileBudget(bounds))
    try:
        found = validate(document, positions, filename, functions=functions, kinds=kinds)
    except RecursionError:  # a guard: the source's depth limit should prevent it
        message = (
            "the document is nested too deeply to validate; lower its nesting "
            f"(or {Limits.setting('max_depth')}, now {bounds.max_depth})"
        )
        found = [Problem(filename, 1, 1, "", message)]
    finally:
        compile_budget.reset(token)
    return document, sorted([*problems, *found], key=lambda p: (p.line, p.column))


class _DocumentChecker(TaskChecker):
    """The top level of a document: ``document``, ``use``, ``schedule`` and the rest."""

    def workflow(self) -> None:
        root = self.document
        if not isinstance(root, dict):
            self.report(
                (),
                f"a blueprint is a mapping with 'document' and 'do' at its top level, "
                f"got {type_name(root)}",
            )
            return
        self.fields(root, (), _TOP_LEVEL, ("document", "do"))
        if "document" in root:
            self.header(root["document"], ("document",))
        if "use" in root:
            self.use(root["use"], ("use",))
        if "evaluate" in root:
            self.evaluate(root["evaluate"], ("evaluate",))
        if "input" in root:
            self.data_stage(root["input"], ("input",), "from", ())
        if "schedule" in root:
            self.schedule(root["schedule"], ("schedule",))
        if "timeout" in root:
            self.timeout(root["timeout"], ("timeout",), ())
        if "do" in root:
            self.task_list(root["do"], ("do",), ())
        if "output" in root:
            self.data_stage(root["output"], ("output",), "as", ())

    def header(self, value: Any, path: Path) -> None:
        header = self.mapping(value, path)
        if header is None:
            return
        allowed = ("dsl", "namespace", "name", "version", "title", "summary", "tags", "metadata")
        self.fields(header, path, allowed, ("dsl", "namespace", "name", "version"))
        if "dsl" in header:
            dsl = self.semver(header["dsl"], (*path, "dsl"))
            if dsl is not None and not dsl.startswith("1."):
                self.report((*path, "dsl"), f"Legato runs DSL 1.x documents, this one is DSL {dsl}")
        for key in ("namespace", "name"):
            name = self.string(header[key], (*path, key)) if key in header else None
            if name is not None and not _NAME.match(name):
                self.report(
                    (*path, key),
                    f"{header[key]!r} is not a valid {key}: use letters, digits and '-' "
                    "(at most 63, not starting or ending with '-')",
                )
        if "version" in header:
            self.semver(header["version"], (*path, "version"))
        for key in ("title", "summary"):
            if key in header:
                self.string(header[key], (*path, key))
        for key in ("tags", "metadata"):
            if key in header:
                self.mapping(header[key], (*path, key))

    def use(self, value: Any, path: Path) -> None:
        use = self.mapping(value, path)
        if use is None:
            return
        self.fields(use, path, _USE)
        named = {
            "authentications": lambda v, p: self.authentication(v, p, (), named=True),
            "catalogs": self.catalog,
            "errors": lambda v, p: self.error(v, p, ()),
            "functions": lambda v, p: self.task(v, p, (), None),
            "retries": lambda v, p: self.retry(v, p, ()),
            "timeouts": self.named_timeout,
        }
        for section, check in named.items():
            if section in use and self.mapping(use[section], (*path, section)) is not None:
                for name, item in use[section].items():
                    check(item, (*path, section, name))
        if "secrets" in use:
            self.strings(use["secrets"], (*path, "secrets"))
            self._granted(use["secrets"], (*path, "secrets"))
        if "extensions" in use:
            self.extensions(use["extensions"], (*path, "extensions"))

    def _granted(self, secrets: Any, path: Path) -> None:
        """A secret set in this environment but not granted to the document's namespace
        is refused now rather than when a run starts (where it is not set, the worker's
        environment decides, when the run starts)."""
        head = self.document.get("document") if isinstance(self.document, dict) else None
        namespace = head.get("namespace") if isinstance(head, dict) else None
        if not isinstance(namespace, str) or not isinstance(secrets, list):
            return
        for i, name in enumerate(secrets):
            if isinstance(name, str) and (refused := secret_refusal(name, namespace)):
                self.report((*path, i), refused)

    def catalog(self, value: Any, path: Path) -> None:
        catalog = self.mapping(value, path)
        if catalog is not None:
            self.fields(catalog, path, ("endpoint",), ("endpoint",))
            if "endpoint" in catalog:
                self.endpoint(catalog["endpoint"], (*path, "endpoint"), ())

    def named_timeout(self, value: Any, path: Path) -> None:
        if isinstance(value, str):
            self.report(path, "expected a timeout such as {after: PT30S}, got a string")
        else:
            self.timeout(value, path, ())

    def extensions(self, value: Any, path: Path) -> None:
        if not isinstance(value, list):
            self.report(path, f"expected a list of extensions, got {type_name(value)}")
            return
        for i, item in enumerate(value):
            if not isinstance(item, dict) or len(item) != 1:
                self.report((*path, i), "expected an extension: '- extensionName:' and its fields")
                continue
            ((name, extension),) = item.items()
            where = (*path, i, name)
            if self.mapping(extension, where) is None:
                continue
            self.fields(extension, where, ("extend", "when", "before", "after"), ("extend",))
            if "extend" in extension:
                self.choice(extension["extend"], (*where, "extend"), _EXTENDS)
            if "when" in extension:
                self.expression(extension["when"], (*where, "when"), ())
            for key in ("before", "after"):
                if key in extension:
                    self.task_list(extension[key], (*where, key), ())

    def evaluate(self, value: Any, path: Path) -> None:
        evaluate = self.mapping(value, path)
        if evaluate is None:
            return
        self.fields(evaluate, path, ("language", "mode"))
        language = evaluate.get("language")
        if language is not None and self.string(language, (*path, "language")) not in (None, "jq"):
            self.unsupported((*path, "language"), "evaluate.language")
        mode = evaluate.get("mode")
        if mode == "loose":
            self.unsupported((*path, "mode"), "evaluate.mode: loose")
        elif mode is not None:
            self.choice(mode, (*path, "mode"), ("strict", "loose"))

    def schedule(self, value: Any, path: Path) -> None:
        schedule = self.mapping(value, path)
        if schedule is None:
            return
        kinds = ("every", "cron", "after", "on")
        self.fields(schedule, path, kinds)
        if not any(key in schedule for key in kinds):
            self.report(path, "expected one of: " + ", ".join(kinds), at_key=True)
        for key in ("every", "after"):
            if key in schedule:
                self.duration(schedule[key], (*path, key), ())
        if "cron" in schedule:
            self.cron(schedule["cron"], (*path, "cron"))
        if "on" in schedule:
            self.consumption(schedule["on"], (*path, "on"), ())

    def cron(self, value: Any, path: Path) -> None:
        if self.string(value, path) is None:
            return
        parts = value.split()
        if value.strip() in _CRON_MACROS:
            return
        if len(parts) not in (5, 6) or not all(_CRON_FIELD.match(part) for part in parts):
            self.report(
                path,
                f"{value!r} is not a cron expression: write five fields (minute hour "
                "day-of-month month day-of-week), e.g. '0 0 * * *', or @daily, @hourly, ...",
            )
