"""Validation of ``call`` tasks: what a call may target, and the arguments of each target.

``call:`` names many different things: a built-in protocol (``http``, ``openapi``), one
Legato does not support (``grpc``, ...), a function of ``use.functions`` or registered in
Python, a catalog function (``name:version@catalog``), a function definition at a URL,
or an extension task kind (``namespace:kind``). The target's form decides which, so a
typo (``htp``) is caught as a typo rather than taken for an unknown function.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from typing import Any

from .bindings import KIND_NAME
from .source import Path
from .validation_core import Scope, suggestion
from .validation_shapes import ShapeChecker

CALL_TYPES = ("http", "openapi", "asyncapi", "grpc", "mcp", "a2a")
_UNSUPPORTED_CALLS = ("asyncapi", "grpc", "mcp", "a2a")
_HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options", "trace", "connect")
_OUTPUTS = ("raw", "content", "response")
_CATALOG_REF = re.compile(r"^[^\s:@/]+:[^\s@]+@([^\s@]+)$")


class CallChecker(ShapeChecker):
    """Checks ``call`` tasks."""

    def call(self, task: dict[str, Any], path: Path, scope: Scope) -> None:
        target = task["call"]
        where, with_path = (*path, "call"), (*path, "with")
        if self.string(target, where) is None:
            return
        arguments = task.get("with")
        if target in ("http", "openapi"):
            if "with" not in task:
                self.report(path, "missing required field 'with'", at_key=True)
                return
            found = self.mapping(arguments, with_path)
            if found is not None and target == "http":
                self.http(found, with_path, scope)
            elif found is not None:
                self.openapi(found, with_path, scope)
            return
        if target in _UNSUPPORTED_CALLS:
            self.unsupported(where, f"call: {target}")
            return
        if "://" in target:
            pass  # a function definition fetched from that address
        elif "@" in target:
            self.catalog_function(target, where)
        elif ":" in target:
            self.extension_kind(target, where, arguments, with_path if "with" in task else path)
        elif target not in self.defined["functions"]:
            self.function_name(target, where)
        if arguments is not None and self.mapping(arguments, with_path) is not None:
            self.scan(arguments, with_path, scope)

    def function_name(self, target: str, where: Path) -> None:
        """A plain name: a function of use.functions, or a registered Python function."""
        if self.functions is not None and target in self.functions:
            return
        close = suggestion(target, CALL_TYPES)
        if close and _similar(target, CALL_TYPES):
            self.report(where, f"unknown call type '{target}'{close}")
        elif self.functions is not None:
            known = [*self.defined["functions"], *self.functions]
            self.report(
                where,
                f"unknown function '{target}'{suggestion(target, [*known, *CALL_TYPES])}: "
                "define it under use.functions or register a Python function of that name",
            )

    def catalog_function(self, target: str, where: Path) -> None:
        match = _CATALOG_REF.match(target)
        if match is None:
            self.report(
                where,
                f"'{target}' is not a catalog reference: write <function>:<version>@<catalog>",
            )
            return
        catalog = match.group(1)
        known = self.defined["catalogs"]
        if catalog != "default" and catalog not in known:
            self.report(
                where,
                f"no catalog named '{catalog}' under use.catalogs{suggestion(catalog, known)}; "
                "declare it there, or use the runtime's catalog with @default",
            )

    def extension_kind(self, target: str, where: Path, arguments: Any, with_path: Path) -> None:
        if not KIND_NAME.match(target):
            self.report(
                where,
                f"'{target}' is not a task kind name: write <namespace>:<kind> in lowercase, "
                "e.g. acme:approve (a catalog function is <function>:<version>@<catalog>)",
            )
            return
        check = self.kinds.get(target)
        if check is None:
            known = ", ".join(sorted(self.kinds)) or "none registered"
            self.report(
                where,
                f"unknown extension task kind '{target}' (known: {known})"
                f"{suggestion(target, self.kinds)}",
            )
            return
        try:
            messages = check(arguments)
        except Exception as exc:  # a faulty check must not hide the other problems
            messages = [f"the check of task kind '{target}' failed: {exc!r}"]
        for message in messages:
            self.report(with_path, message)

    def http(self, args: dict[str, Any], path: Path, scope: Scope) -> None:
        allowed = ("method", "endpoint", "headers", "body", "query", "output", "redirect")
        self.fields(args, path, allowed, ("method", "endpoint"))
        method = args.get("method")
        if method is not None and self.string(method, (*path, "method")) is not None:
            scoped = self.maybe_expression(method, (*path, "method"), scope)
            if not scoped and method.lower() not in _HTTP_METHODS:
                self.report(
                    (*path, "method"),
                    f"unknown HTTP method '{method}'{suggestion(method.lower(), _HTTP_METHODS)}",
                )
        if "endpoint" in args:
            self.endpoint(args["endpoint"], (*path, "endpoint"), scope)
        for key in ("headers", "query"):
            if key not in args:
                continue
            value = args[key]
            if isinstance(value, str):
                if not self.maybe_expression(value, (*path, key), scope):
                    self.report((*path, key), "expected a mapping or a ${ } expression")
            elif self.mapping(value, (*path, key)) is not None:
                self.scan(value, (*path, key), scope)
        if "body" in args:
            self.scan(args["body"], (*path, "body"), scope)
        self.http_options(args, path)

    def http_options(self, args: dict[str, Any], path: Path) -> None:
        if "output" in args:
            self.choice(args["output"], (*path, "output"), _OUTPUTS)
        if "redirect" in args:
            self.boolean(args["redirect"], (*path, "redirect"))

    def openapi(self, args: dict[str, Any], path: Path, scope: Scope) -> None:
        allowed = ("document", "operationId", "parameters", "authentication", "output", "redirect")
        self.fields(args, path, allowed, ("document", "operationId"))
        if "document" in args:
            self.resource(args["document"], (*path, "document"), scope)
        if "operationId" in args:
            self.string(args["operationId"], (*path, "operationId"), scope)
        if "parameters" in args and self.mapping(args["parameters"], (*path, "parameters")):
            self.scan(args["parameters"], (*path, "parameters"), scope)
        if "authentication" in args:
            self.authentication(args["authentication"], (*path, "authentication"), scope)
        self.http_options(args, path)


def _similar(word: str, choices: Collection[str]) -> bool:
    """Close enough to a call type to be a typo of it (and not a function's own name)."""
    lowered = word.lower()
    return any(difflib.SequenceMatcher(None, lowered, c).ratio() >= 0.75 for c in choices)
