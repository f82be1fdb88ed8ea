"""Describing errors and code locations for journals and messages."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from typing import Any

_LEGATO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ASYNCIO_DIR = os.path.dirname(asyncio.__file__)


def describe_error(exc: BaseException) -> str:
    """JSON for an exception: type, message and traceback.

    An exception with a ``problem`` dict (a blueprint's RFC 7807 error) adds it as is, so
    callers can read the DSL error a blueprint run faulted with.
    """
    described: dict[str, Any] = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
    }
    problem = getattr(exc, "problem", None)
    if isinstance(problem, dict):
        described["problem"] = problem
    return json.dumps(described)


def caller_location() -> str:
    """file:line of the user code that issued the current command."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith((_LEGATO_DIR, _ASYNCIO_DIR)):
            return f"{filename}:{frame.f_lineno}"
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>"
