"""What every ``legato`` command shares: the global settings, the consoles, error handling
and reading JSON from an option.

Kept apart from the Typer app so each command module imports it without a cycle.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import typer

from ..errors import InvalidInput, LegatoError
from ..store import DEFAULT_URL
from .render import make_console

T = TypeVar("T")

out = make_console()
err = make_console(stderr=True)


@dataclass
class Settings:
    db: str = DEFAULT_URL
    debug: bool = False


settings = Settings()


def fail(message: str) -> None:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def handles_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Turn Legato and input errors into one clear line (a traceback only with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except (LegatoError, TimeoutError) as exc:
            if settings.debug:
                raise
            fail(str(exc))
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        raise AssertionError("unreachable")

    return wrapper


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def parse_json(text: str | None, option: str) -> Any:
    """JSON from an option value; ``@path`` reads it from a file."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise InvalidInput(f"{option}: no such file {path}")
        source = f"{option} file {path}"
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
