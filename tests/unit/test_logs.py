"""Legato logs only on its own loggers and leaves everyone else's logging alone."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from legato import logs


@pytest.fixture
def legato_logger() -> Iterator[logging.Logger]:
    """The ``legato`` logger, put back as it was after the test."""
    logger = logging.getLogger("legato")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


def test_importing_legato_and_building_a_worker_leave_the_root_logger_alone(
    tmp_path: Path,
) -> None:
    """In a fresh interpreter: nothing Legato does at import or in Worker() changes the
    root logger or httpx's, and httpx's INFO records reach no handler."""
    script = f"""
import logging, sys
before = (logging.getLogger().level, list(logging.getLogger().handlers))
import httpx
import legato
from legato import logs
worker = legato.Worker("sqlite:///{tmp_path / "w.db"}")
logs.configure("debug", "json")  # what `legato worker --log-level debug` does
after = (logging.getLogger().level, list(logging.getLogger().handlers))
assert before == after, (before, after)
assert logging.getLogger("httpx").level == logging.NOTSET
assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
assert not logging.getLogger("httpcore").isEnabledFor(logging.INFO)
logging.getLogger("httpx").info("HTTP Request: GET http://x/?token=s3cret")
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert "s3cret" not in done.stderr and "HTTP Request" not in done.stderr


def test_configure_touches_only_the_legato_logger(legato_logger: logging.Logger) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("httpx").level)
    stream = io.StringIO()
    logs.configure("debug", "text", stream)
    logs.configure("warning", "json", stream)  # again: replaces its handler, adds none
    assert (root.level, list(root.handlers), logging.getLogger("httpx").level) == before
    assert legato_logger.level == logging.WARNING and not legato_logger.propagate
    named = [h for h in legato_logger.handlers if h.get_name() == "legato-cli"]
    assert len(named) == 1
    logging.getLogger("legato.worker.execution").info("not shown")
    logging.getLogger("other").warning("not ours")
    assert stream.getvalue() == ""


def test_json_lines_carry_time_with_zone_level_logger_message_and_run_fields(
    legato_logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    logs.configure("info", "json", stream)
    log = logging.getLogger("legato.worker.execution")
    log.info("run %s completed", "r1", extra=logs.run_fields("r1", "wf", "host:1:ab"))
    log.info("worker %s stopped", "host:1:ab", extra={"worker": "host:1:ab"})
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "run r1 completed"
    assert first["level"] == "info" and first["logger"] == "legato.worker.execution"
    assert (first["run_id"], first["workflow"], first["worker"]) == ("r1", "wf", "host:1:ab")
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert second["worker"] == "host:1:ab" and "run_id" not in second


def test_unknown_level_or_format_is_refused(legato_logger: logging.Logger) -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.configure("loud", "text")
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        logs.configure("info", "xml")
