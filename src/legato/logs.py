"""What Legato logs about runs, and how the ``legato`` command shows it.

The library only emits records on loggers under ``legato`` (``logging.getLogger(__name__)``
in each module): it installs no handler and changes no level, neither the root logger's
nor any other library's, so an application that embeds a worker decides what it sees.

Every record about a run carries three attributes, ``run_id``, ``workflow`` and
``worker`` (set with :func:`run_fields` as ``extra``), so a handler can filter on them
and :class:`JsonFormatter` writes them as fields; the message names them too, for a
plain-text log.

:func:`configure` is for the ``legato`` command (``legato worker --log-level
--log-format``): it gives the ``legato`` logger its own handler on stderr and leaves
every other logger as it was.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import IO, Any

RUN_FIELDS = ("run_id", "workflow", "worker")
"""The attributes a record about a run carries (see :func:`run_fields`)."""

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
"""The levels ``legato worker --log-level`` accepts."""

FORMATS = ("text", "json")
"""The formats ``legato worker --log-format`` accepts."""

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_HANDLER_NAME = "legato-cli"

# The one handler a library may add: with it, an application that configures no logging
# gets no stray lines from Legato on stderr (Python's last-resort handler would print
# every warning); one that does configure logging sees every record as usual.
logging.getLogger("legato").addHandler(logging.NullHandler())


def run_fields(run_id: str, workflow: str, worker: str) -> dict[str, str]:
    """The ``extra`` of a record about a run: which run, of which workflow, on which worker."""
    return {"run_id": run_id, "workflow": workflow, "worker": worker}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601 with its zone), level, logger, message,
    and the run's fields when the record is about a run (an exception as ``exception``)."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created).astimezone()
        line: dict[str, Any] = {
            "time": moment.isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in RUN_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str = "info", fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Show Legato's records at ``level`` and above on ``stream`` (stderr) as ``fmt``.

    Only the ``legato`` logger is touched: it gets one handler (replacing the one an
    earlier call gave it) and stops propagating, so the root logger's level and handlers,
    and other libraries' loggers (httpx logs every request at INFO), stay as they were.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}: use one of {', '.join(FORMATS)}")
    logger = logging.getLogger("legato")
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(LEVELS[level])
    logger.propagate = False
