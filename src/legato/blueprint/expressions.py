"""Runtime expressions: jq programs written as ``${ ... }`` (or bare, where a field is one).

Blueprints compute with jq. An expression sees its task's input as ``.`` and the runtime
arguments (``$context``, ``$input``, ``$output``, ``$secrets``, ``$task``, ``$workflow``,
``$runtime``, plus names a ``for``/``catch`` adds) as jq variables.

Compiling a jq program is costly, and variables must be declared when it is compiled,
so each program is compiled once per set of variable names: the values arrive as one
array that the program destructures before running the user's expression. Only the
variables an expression mentions are passed: encoding the others (``$workflow`` holds the
whole document) for every evaluation cost ten times what evaluating ``.n + 1`` costs.

jq's ``now`` reads :data:`clock`: the host's time unless the caller sets it. A blueprint
run sets it to the run's recorded time, since a replay must see the value the first
execution saw; an expression that does not call ``now`` never asks.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import jq

from ..errors import BlueprintFault, ExpressionError
from . import limits

_ENCLOSED = re.compile(r"^\s*\$\{(.*)\}\s*$", re.DOTALL)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_expression(value: Any) -> bool:
    """True for a string written ``${ ... }``."""
    return isinstance(value, str) and _ENCLOSED.match(value) is not None


def strip(value: str) -> str:
    """The jq text of ``value``: inside ``${ }`` if enclosed, else the whole string."""
    match = _ENCLOSED.match(value)
    return (match.group(1) if match else value).strip()


clock: contextvars.ContextVar[Callable[[], float]] = contextvars.ContextVar(
    "legato_expression_clock", default=time.time
)
"""What jq's ``now`` returns (seconds since the epoch). A blueprint run sets it to its
recorded time; a context variable, so each run (and each task of a run) keeps its own."""

_VARIABLE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_NOW = re.compile(r"(?<![\w$.])now\b")


@functools.lru_cache(maxsize=4096)
def _reads(text: str) -> tuple[tuple[str, ...], bool]:
    """The variables ``text`` mentions (in order, once each) and whether it calls ``now``.

    A jq program can only read a variable by writing ``$name``, so a name it does not
    mention needs neither declaring nor encoding. A mention inside a string literal only
    costs an unneeded binding.
    """
    return tuple(dict.fromkeys(_VARIABLE.findall(text))), _NOW.search(text) is not None


@functools.lru_cache(maxsize=4096)
def _program(text: str, names: tuple[str, ...], reads_now: bool) -> Any:
    bind = "".join(f"$__args[{i}] as ${name} | " for i, name in enumerate(names))
    if reads_now:  # the time comes last in the array of values
        bind += f"$__args[{len(names)}] as $__now | def now: $__now; "
    # The worker's environment is not the document's to read ($secrets is), and a run
    # has no jq input stream: those builtins are shadowed. The newline ends a trailing
    # jq comment in the author's text.
    return jq.compile(f"{_SHADOWED}. as [$__in, $__args] | {{}} as $ENV | {bind}$__in | ({text}\n)")


_SHADOWED = "def env: {}; def input: null; def inputs: empty; "


def check(value: str, names: tuple[str, ...] = ()) -> str | None:
    """Compile ``value`` (enclosed or bare); return jq's complaint, or None if it compiles.

    Used by validation, where the values of variables are not known yet: every name a
    blueprint may bind (``$err``, a ``for`` item) is declared as null so jq accepts it.
    """
    text = strip(value)
    if not text:
        return "the expression is empty"
    budget = limits.compile_budget.get()
    bounds = budget.limits if budget is not None else limits.current()
    if len(text) > bounds.max_expression_chars:
        return (
            f"the expression is {len(text):,} characters; the limit is "
            f"{bounds.max_expression_chars:,} (set "
            f"{limits.Limits.setting('max_expression_chars')} to raise it)"
        )
    if budget is not None and budget.spent > bounds.max_compile_seconds:
        return (
            f"not compiled: this document's expressions took more than "
            f"{bounds.max_compile_seconds:g} s to compile (set "
            f"{limits.Limits.setting('max_compile_seconds')} to raise the limit)"
        )
    started = time.perf_counter()
    try:
        # Compiled alone (variables declared as arguments), so jq's line and column
        # refer to the author's text, not to the wrapper :func:`evaluate` adds.
        jq.compile(_SHADOWED + "\n" + text, args=dict.fromkeys(_all_names(names)))
    except ValueError as exc:
        # The shadowing definitions take line 1: give the line of the author's text.
        return _LINE.sub(lambda m: f"line {int(m.group(1)) - 1}", _first_line(str(exc)))
    finally:
        if budget is not None:
            budget.spent += time.perf_counter() - started
    return None


_LINE = re.compile(r"line (\d+)")


STANDARD_NAMES = ("context", "input", "output", "secrets", "task", "workflow", "runtime")


def _all_names(extra: tuple[str, ...]) -> tuple[str, ...]:
    seen = dict.fromkeys(STANDARD_NAMES)
    for name in extra:
        if _NAME.match(name):
            seen.setdefault(name)
    return tuple(seen)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = lines[0] if lines else message
    text = text.removeprefix("jq: error: ").removeprefix("jq: ").replace(" at <top-level>", "")
    return text.rstrip(":")


def evaluate(text: str, data: Any, variables: Mapping[str, Any]) -> Any:
    """Run jq ``text`` on ``data``: its first result (None if it yields nothing).

    Raises :class:`BlueprintFault` with the DSL's ``expression`` error type when the
    program fails at run time (``.a.b`` of a string, say), so a ``try`` can catch it.
    """
    mentioned, reads_now = _reads(text)
    # A standard name the task does not bind ($output outside export.as) is null.
    names = tuple(n for n in mentioned if n in variables or n in STANDARD_NAMES)
    values = [variables.get(name) for name in names]
    if reads_now:
        values.append(clock.get()())
    try:
        program = _program(text, names, reads_now)
    except ValueError as exc:
        raise ExpressionError(f"cannot compile {text!r}: {_first_line(str(exc))}") from exc
    try:
        results = program.input_value([data, values]).all()
    except ValueError as exc:
        raise BlueprintFault.expression(f"{text!r}: {_first_line(str(exc))}") from exc
    return results[0] if results else None


def evaluate_value(value: Any, data: Any, variables: Mapping[str, Any]) -> Any:
    """The value of a field that is an expression (``${ }`` optional): a ``when``, ``as``."""
    if isinstance(value, str):
        return evaluate(strip(value), data, variables)
    return interpolate(value, data, variables)


def interpolate(value: Any, data: Any, variables: Mapping[str, Any]) -> Any:
    """``value`` with every ``${ }`` string inside it (at any depth) replaced by its result."""
    if isinstance(value, str):
        return evaluate(strip(value), data, variables) if is_expression(value) else value
    if isinstance(value, Mapping):
        return {k: interpolate(v, data, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, data, variables) for v in value]
    return value


def truthy(value: Any) -> bool:
    """jq's truth: everything but ``false`` and ``null``."""
    return value is not None and value is not False
