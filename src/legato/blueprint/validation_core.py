"""The validator's toolkit: where a problem is, what type a value has, what is in scope.

Validation walks the plain document (as :mod:`legato.blueprint.source` loaded it) and
reports every problem it meets instead of stopping at the first, so an author fixes a
file in one pass. This module holds what every part of the walk needs: reporting at the
right line (the offending value, else its key, else the nearest ancestor), type and key
checks with "did you mean", runtime expressions compiled with the variables in scope,
references to ``use`` sections, durations and URIs; and :data:`UNSUPPORTED`.

The walk is layered by what it checks, each layer a subclass of the one before:
:mod:`~.validation_shapes` (shapes reused all over a document), :mod:`~.validation_calls`
(``call`` targets and their arguments), :mod:`~.validation_tasks` (tasks and task lists)
and :mod:`~.validation` (the document's top level and the public functions).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from . import expressions
from .source import Path, Problem, SourceMap, format_path

Scope = tuple[str, ...]
"""Extra variable names bound where an expression runs (a ``for``'s item, a catch's error)."""

UNSUPPORTED: dict[str, str] = {
    "call: asyncapi": (
        "Legato has no AsyncAPI client; publish with an 'emit' task, consume with 'listen', "
        "or call the broker's HTTP API with 'call: http'"
    ),
    "call: grpc": (
        "Legato has no gRPC client; call an HTTP endpoint of the service with 'call: http', "
        "or register an extension task kind (call: <namespace>:<kind>) that makes the call"
    ),
    "call: mcp": (
        "Legato has no MCP client; call the tool's HTTP endpoint with 'call: http', or "
        "register an extension task kind (call: <namespace>:<kind>) that calls it"
    ),
    "call: a2a": ("Legato has no A2A client; send the agent's JSON-RPC request with 'call: http'"),
    "run: container": (
        "Legato does not start containers; run a command with 'run: shell' (which may start "
        "the container itself) or another blueprint with 'run: workflow'"
    ),
    "run: script source": ("Legato runs inline scripts only; put the script's text in 'code'"),
    "evaluate.language": (
        "Legato evaluates runtime expressions with jq only; remove 'evaluate.language' or "
        "set it to jq"
    ),
    "schema format other than json": (
        "Legato validates data with JSON Schema only; write the schema as JSON Schema "
        "(format: json)"
    ),
    "evaluate.mode: loose": (
        "Legato evaluates expressions in strict mode only (an expression is written "
        "'${ ... }'); remove 'evaluate.mode' or set it to strict"
    ),
}
"""DSL features Legato does not run, each with what to do instead.

A document using one of them is rejected when it is loaded (not when a run reaches the
task), with a message that contains "not supported by Legato".
"""

KindChecks = Mapping[str, Callable[[Any], list[str]]]

_SEMVER = re.compile(
    r"^(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)\.(?:0|[1-9][0-9]*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)
_NUMBER = r"[0-9]+(?:\.[0-9]+)?"
_ISO_DURATION = re.compile(
    rf"^P(?=[0-9T])(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=[0-9])(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
_CALENDAR_UNITS = re.compile(r"^P[^T]*[YMW]")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_JQ_WHERE = re.compile(r"\s*at <top-level>, line \d+, column \d+:?\s*$")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION_UNITS = ("days", "hours", "minutes", "seconds", "milliseconds")
_SINGULAR = {
    "authentications": "authentication",
    "catalogs": "catalog",
    "errors": "error",
    "functions": "function",
    "retries": "retry policy",
    "secrets": "secret",
    "timeouts": "timeout",
}


def type_name(value: Any) -> str:
    """How a message names the type of ``value``: "a list", "an integer"."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def suggestion(word: str, choices: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` when ``word`` looks like a misspelt choice, else ""."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Checker:
    """Collects problems while the document is walked; the checks of plain values."""

    def __init__(
        self,
        document: Any,
        positions: Mapping[Path, tuple[int, int]],
        filename: str,
        functions: Collection[str] | None,
        kinds: KindChecks | None,
    ) -> None:
        self.document = document
        self.positions = positions
        self.filename = filename
        self.functions = functions
        self.kinds: KindChecks = kinds if kinds is not None else {}
        self.problems: list[Problem] = []
        use = document.get("use") if isinstance(document, dict) else None
        use = use if isinstance(use, dict) else {}
        self.defined: dict[str, set[str]] = {
            section: _names(use.get(section))
            for section in (
                "authentications",
                "catalogs",
                "errors",
                "functions",
                "retries",
                "timeouts",
            )
        }
        secrets = use.get("secrets")
        self.defined["secrets"] = (
            {s for s in secrets if isinstance(s, str)} if isinstance(secrets, list) else set()
        )

    # -- reporting ------------------------------------------------------------------------
    def report(self, path: Path, message: str, *, at_key: bool = False) -> None:
        """Record a problem at ``path``: its key (``at_key``) or its value, else an ancestor."""
        line, column = self._position(path, at_key)
        self.problems.append(Problem(self.filename, line, column, format_path(path), message))

    def _position(self, path: Path, at_key: bool) -> tuple[int, int]:
        if at_key and isinstance(self.positions, SourceMap):
            key = self.positions.key(path)
            if key is not None:
                return key
        for end in range(len(path), -1, -1):
            found = self.positions.get(path[:end])
            if found is not None:
                return found
        return (1, 1)

    def unsupported(self, path: Path, feature: str, *, at_key: bool = False) -> None:
        self.report(
            path, f"'{feature}' is not supported by Legato: {UNSUPPORTED[feature]}", at_key=at_key
        )

    # -- types ----------------------------------------------------------------------------
    def mapping(self, value: Any, path: Path) -> dict[str, Any] | None:
        if isinstance(value, dict):
            bad = [k for k in value if not isinstance(k, str)]
            for key in bad:
                self.report((*path, key), f"a key must be a string, got {type_name(key)}")
            return value
        self.report(path, f"expected a mapping, got {type_name(value)}")
        return None

    def string(self, value: Any, path: Path, scope: Scope | None = None) -> str | None:
        """A string; with a ``scope``, a ``${ }`` value is also compiled as an expression."""
        if not isinstance(value, str):
            hint = " (quote it)" if isinstance(value, int | float | bool) else ""
            self.report(path, f"expected a string, got {type_name(value)}{hint}")
            return None
        if scope is not None:
            self.maybe_expression(value, path, scope)
        return value

    def integer(self, value: Any, path: Path, minimum: int | None = None) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.report(path, f"expected an integer, got {type_name(value)}")
            return None
        if minimum is not None and value < minimum:
            self.report(path, f"expected an integer of at least {minimum}, got {value}")
        return value

    def boolean(self, value: Any, path: Path) -> None:
        if not isinstance(value, bool):
            self.report(path, f"expected true or false, got {type_name(value)}")

    def strings(self, value: Any, path: Path, scope: Scope | None = None) -> None:
        if not isinstance(value, list):
            self.report(path, f"expected a list of strings, got {type_name(value)}")
            return
        for i, item in enumerate(value):
            self.string(item, (*path, i), scope)

    def choice(self, value: Any, path: Path, choices: Collection[str]) -> None:
        if self.string(value, path) is not None and value not in choices:
            self.report(
                path,
                f"unknown value {value!r}{suggestion(value, choices)}; expected one of "
                + ", ".join(choices),
            )

    def fields(
        self,
        obj: dict[str, Any],
        path: Path,
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> None:
        """Report keys ``obj`` may not have, and required keys it lacks."""
        for key in obj:
            if isinstance(key, str) and key not in allowed:
                hint = suggestion(key, allowed) or f" (expected one of: {', '.join(allowed)})"
                self.report((*path, key), f"unknown key '{key}'{hint}", at_key=True)
        for key in required:
            if key not in obj:
                self.report(path, f"missing required field '{key}'", at_key=True)

    def one_of(self, obj: dict[str, Any], path: Path, choices: Collection[str]) -> str | None:
        """The one key of ``choices`` that ``obj`` has; a problem if none or several."""
        present = [key for key in choices if key in obj]
        if len(present) == 1:
            return present[0]
        if not present:
            self.report(path, "expected one of: " + ", ".join(choices), at_key=True)
        else:
            self.report(path, "expected only one of: " + ", ".join(present), at_key=True)
        return None

    def reference(self, value: Any, path: Path, section: str) -> None:
        """``value`` names something defined under ``use.<section>``."""
        if self.string(value, path) is None or value in self.defined[section]:
            return
        known = self.defined[section]
        listed = f"; defined: {', '.join(sorted(known))}" if known else ""
        self.report(
            path,
            f"no {_SINGULAR[section]} named {value!r} under use.{section}"
            f"{suggestion(value, known)}{listed}",
        )

    def variable(self, value: Any, path: Path) -> str | None:
        """A name an expression will see as ``$name``."""
        name = self.string(value, path)
        if name is not None and not _VARIABLE.match(name):
            self.report(path, f"{name!r} cannot be a variable name: use letters, digits and _")
            return None
        return name

    # -- expressions ----------------------------------------------------------------------
    def expression(self, value: Any, path: Path, scope: Scope) -> None:
        """A field that is always a jq expression, ``${ }`` or not."""
        if self.string(value, path) is not None:
            self._compile(value, path, scope)

    def maybe_expression(self, value: Any, path: Path, scope: Scope) -> bool:
        """Compile ``value`` if it is written ``${ ... }``; True if it was an expression."""
        if not expressions.is_expression(value):
            return False
        self._compile(value, path, scope)
        return True

    def scan(self, value: Any, path: Path, scope: Scope) -> None:
        """Compile every ``${ }`` string anywhere inside ``value``."""
        if isinstance(value, str):
            self.maybe_expression(value, path, scope)
        elif isinstance(value, dict):
            for key, item in value.items():
                self.scan(item, (*path, key), scope)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.scan(item, (*path, i), scope)

    def _compile(self, value: str, path: Path, scope: Scope) -> None:
        complaint = expressions.check(value, scope)
        if complaint is None:
            return
        text = expressions.strip(value)
        shown = f" {text!r}" if len(text) <= 60 else ""
        # jq's position counts from the program the expression is wrapped in: drop it.
        complaint = _JQ_WHERE.sub("", complaint)
        self.report(path, f"bad jq expression{shown}: {complaint}")

    def value_or_expression(self, value: Any, path: Path, scope: Scope) -> None:
        """An input/output/export transformation: a jq expression or a mapping of values."""
        if isinstance(value, str):
            self._compile(value, path, scope)
        elif isinstance(value, dict):
            self.scan(value, path, scope)
        else:
            self.report(path, f"expected a jq expression or a mapping, got {type_name(value)}")

    # -- durations, URIs, timeouts --------------------------------------------------------
    def duration(self, value: Any, path: Path, scope: Scope) -> None:
        if isinstance(value, str):
            if self.maybe_expression(value, path, scope):
                return
            if not _ISO_DURATION.match(value):
                self.report(
                    path,
                    f"{value!r} is not a duration: write an ISO 8601 duration such as PT30S, "
                    "PT1H30M or P1DT2H, or a mapping such as {seconds: 30}",
                )
            elif _CALENDAR_UNITS.match(value):
                self.report(
                    path,
                    f"{value!r} uses years, months or weeks, whose length depends on the "
                    "calendar; write days instead (P14D)",
                )
            return
        if isinstance(value, dict):
            self.fields(value, path, _DURATION_UNITS)
            if not value:
                self.report(path, "an empty duration: give days, hours, minutes, seconds ...")
            for key in _DURATION_UNITS:
                amount = value.get(key)
                if amount is not None and (
                    isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0
                ):
                    self.report((*path, key), f"expected a number of {key}, got {amount!r}")
            return
        self.report(
            path,
            f"expected a duration (an ISO 8601 string such as PT30S, or a mapping such as "
            f"{{seconds: 30}}), got {type_name(value)}",
        )

    def uri(self, value: Any, path: Path, scope: Scope) -> None:
        """An absolute URI (template), or an expression that makes one."""
        if self.string(value, path) is None or self.maybe_expression(value, path, scope):
            return
        if not _URI.match(value):
            self.report(
                path,
                f"expected an absolute URI such as https://example.com/pets/{{id}}, got {value!r}",
            )

    def timeout(self, value: Any, path: Path, scope: Scope) -> None:
        if isinstance(value, str):
            self.reference(value, path, "timeouts")
            return
        timeout = self.mapping(value, path)
        if timeout is not None:
            self.fields(timeout, path, ("after",), ("after",))
            if "after" in timeout:
                self.duration(timeout["after"], (*path, "after"), scope)

    def semver(self, value: Any, path: Path) -> str | None:
        version = self.string(value, path)
        if version is not None and not _SEMVER.match(version):
            self.report(path, f"{version!r} is not a semantic version such as 1.0.0")
            return None
        return version


def _names(section: Any) -> set[str]:
    return {key for key in section if isinstance(key, str)} if isinstance(section, dict) else set()
