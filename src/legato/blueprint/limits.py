"""How much a blueprint document may ask of the validator before it is refused.

Documents come from people and, through the HTTP API, from remote callers. A few hundred
bytes of nested YAML aliases expand to millions of values; a deeply nested flow list
exhausts the parser's recursion; a jq program of tens of thousands of terms takes minutes
to compile (and crashes jq past that). Each limit below turns such a document into one
problem naming the limit and the setting that raises it, instead of a hang or a crash.

The defaults are far above what a real process needs (the largest example document has
a few hundred values, eight levels of nesting and expressions under 200 characters).
Each can be raised with an environment variable, read when a document is checked.
"""

from __future__ import annotations

import contextvars
import os
import sys
from dataclasses import dataclass, field, fields

__all__ = ["UNLIMITED", "CompileBudget", "Limits", "compile_budget", "current"]


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 262_144
    """Size of the document's text, in UTF-8 bytes (``LEGATO_BLUEPRINT_MAX_BYTES``)."""
    max_depth: int = 100
    """Nesting of mappings and lists (``LEGATO_BLUEPRINT_MAX_DEPTH``)."""
    max_values: int = 100_000
    """Values in the document once YAML aliases are expanded
    (``LEGATO_BLUEPRINT_MAX_VALUES``)."""
    max_expression_chars: int = 4096
    """Length of one runtime expression (``LEGATO_BLUEPRINT_MAX_EXPRESSION_CHARS``)."""
    max_compile_seconds: float = 2.0
    """Time spent compiling one document's expressions while validating it
    (``LEGATO_BLUEPRINT_MAX_COMPILE_SECONDS``)."""

    @staticmethod
    def setting(name: str) -> str:
        """The environment variable that sets the limit ``name``."""
        return f"LEGATO_BLUEPRINT_{name.upper()}"


UNLIMITED = Limits(sys.maxsize, sys.maxsize, sys.maxsize, sys.maxsize, float("inf"))
"""For documents validated earlier (a run's, a published one): read whatever their size."""


def current() -> Limits:
    """The limits in force: the defaults, overridden by the environment.

    A value that is not a positive number is ignored with the default kept, so that a
    typo cannot switch a limit off.
    """
    values: dict[str, float | int] = {}
    for f in fields(Limits):
        raw = os.environ.get(Limits.setting(f.name))
        if raw is None:
            continue
        try:
            value = float(raw) if f.type == "float" else int(raw)
        except ValueError:
            continue
        if value > 0:
            values[f.name] = value
    return Limits(**values)  # type: ignore[arg-type]


@dataclass
class CompileBudget:
    """The compile time one document's validation has spent (see :func:`compile_budget`)."""

    limits: Limits = field(default_factory=Limits)
    spent: float = 0.0


compile_budget: contextvars.ContextVar[CompileBudget | None] = contextvars.ContextVar(
    "legato_blueprint_compile_budget", default=None
)
"""Set while a document is validated: expression checks add their compile time to it."""
