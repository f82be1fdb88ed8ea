"""What every ``legato`` command shares: the global settings, the consoles, error handling,
option checks and reading JSON from an option.

Kept apart from the Typer app so each command module imports it without a cycle.

Nothing the CLI prints is read as Rich markup: the consoles have markup and emoji codes
off, and colour comes only from :class:`rich.text.Text` styles. A run id ``order[eu]`` or
an error "field [customer_id] is missing" is shown exactly as it is.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import re
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import typer
from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderHook, RenderResult
from rich.segment import Segment
from rich.text import Text

from .. import payload
from ..errors import LegatoError, PayloadError
from ..store import DEFAULT_URL

T = TypeVar("T")


# C0 and C1 control characters but newline and tab: written raw, an ESC in a run id or an
# error message would drive the user's terminal (colours, its title, clearing the screen).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """``text`` with each control character shown as an escape (``\\x1b``)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


class _Visible:
    """A renderable drawn as ``inner`` is, its text with control characters escaped (the
    console's own colour codes are added after, so styles still show)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control or not _CONTROL.search(segment.text):
                yield segment
            else:
                yield Segment(visible(segment.text), segment.style)


class _ShowControls(RenderHook):
    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[Any]:
        return [_Visible(r) for r in renderables]


def _console(stderr: bool = False, quiet: bool = False) -> Console:
    """A console that prints text as it is: no markup, no emoji codes, no highlighting,
    no hard wrapping (a long line stays one line), control characters escaped. Colour
    only on a terminal."""
    console = Console(
        stderr=stderr, quiet=quiet, markup=False, emoji=False, highlight=False, soft_wrap=True
    )
    console.push_render_hook(_ShowControls())
    return console


console = _console
out = _console()
err = _console(stderr=True)


@dataclass
class Settings:
    db: str = DEFAULT_URL
    debug: bool = False
    json: bool = False  # --json was given: errors go to stderr as JSON objects


settings = Settings()

EXIT_FAILED = 1
EXIT_USAGE = 2

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)@")


def masked(text: str) -> str:
    """``text`` without any password: the one in ``--db`` and any in a URL it quotes."""
    password = _password(settings.db)
    if password and len(password) >= 3:  # a shorter one would mask letters of words
        text = text.replace(password, "***")
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}***@", text)


def _password(url: str) -> str | None:
    try:
        return urlparse(url).password
    except ValueError:
        match = _URL_PASSWORD.search(url)
        return match["pw"] if match else None


def shown_db() -> str:
    """The database URL as messages may show it (password masked)."""
    return masked(settings.db)


def report_error(kind: str, message: str, code: int) -> None:
    """Print one error: a line ``error: MESSAGE`` on stderr, or with ``--json`` an object
    ``{"error": {"type", "message", "exit_code"}}`` on one line of stderr. A message
    with line breaks (a driver's, say) is joined into one line."""
    message = " ".join(line.strip() for line in masked(message).splitlines() if line.strip())
    if settings.json:
        error = {"type": kind, "message": message, "exit_code": code}
        print(json.dumps({"error": error}), file=sys.stderr)
    else:
        err.print(Text.assemble(("error:", "red"), " ", message))


def fail(message: str, kind: str = "Failed") -> None:
    report_error(kind, message, EXIT_FAILED)
    raise typer.Exit(EXIT_FAILED)


def warn(message: str) -> None:
    err.print(Text.assemble(("warning:", "yellow"), " ", masked(message)))


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
            fail(str(exc), type(exc).__name__)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None
        raise AssertionError("unreachable")

    return wrapper


class Usage(typer.BadParameter):
    """A command line that is wrong as a whole (options that do not go together), found
    before anything is done: reported as a usage error (exit 2), message as written."""

    def format_message(self) -> str:
        return self.message


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def parse_json(text: str | None, option: str) -> Any:
    """JSON from an option value; ``@path`` reads it from a file. Bad JSON is a usage
    error (exit 2): the command line is wrong, nothing was done."""
    if text is None:
        return None
    source = option
    if text.startswith("@"):
        path = Path(text[1:])
        if not path.is_file():
            raise Usage(f"{option}: no such file {path}")
        source = f"{option} file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Usage(f"{source}: cannot read it: {exc}") from exc
    try:  # nesting Python cannot parse, 5,000-digit integers and NaN are refused too
        return payload.parse_json(text, source)
    except PayloadError as exc:
        raise Usage(str(exc)) from None


# -- the database: read commands never create one -------------------------------------------
def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:`` URL (None for other databases and in-memory ones)."""
    if not url.startswith("sqlite:"):
        return None
    path = urlparse(url).path
    path = path[1:] if path.startswith("/") else path
    if not path or path.startswith(":memory:"):
        return None
    return Path(path)


def existing_db() -> str:
    """The ``--db`` URL for a command that only reads or changes what exists: a SQLite
    file that is missing is reported (``no database at PATH``), never created."""
    url = settings.db
    if _sqlite_file(url) is None or "mode=" in urlparse(url).query:
        return url
    return url + ("&" if "?" in url else "?") + "mode=rw"


def warn_if_new() -> None:
    """Say on stderr that this command is about to create a new SQLite database, and
    where: a mistyped ``--db`` should not go unnoticed."""
    path = _sqlite_file(settings.db)
    if path is not None and not path.exists() and path.resolve().parent.is_dir():
        warn(f"no database at {path.resolve()}: creating a new one")


# -- option checks (Typer callbacks): a bad value is a usage error, exit 2 -----------------
def at_least(minimum: int) -> Callable[[int | None], int | None]:
    """A check that an integer option is ``minimum`` or more."""

    def check(value: int | None) -> int | None:
        if value is not None and value < minimum:
            raise typer.BadParameter(f"{value} is too small: give {minimum} or more")
        return value

    return check


def seconds(value: float | None) -> float | None:
    """A check that a duration is a finite number of seconds above 0."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise typer.BadParameter(f"{value:g} is not a duration: give seconds above 0")
    return value


def seconds_or_zero(value: float | None) -> float | None:
    """A check that a duration is a finite number of seconds, 0 or more."""
    if value is not None and (not math.isfinite(value) or value < 0):
        raise typer.BadParameter(f"{value:g} is not a duration: give seconds, 0 or more")
    return value


def not_empty(value: str | None) -> str | None:
    """A check that a text option, when given, is not empty (or only spaces)."""
    if value is not None and not value.strip():
        raise typer.BadParameter("must not be empty")
    return value


def names_not_empty(values: list[str] | None) -> list[str] | None:
    for value in values or []:
        not_empty(value)
    return values
