"""Legato's event bus for blueprints: CloudEvents 1.0 kept in the store.

Publishing appends an event and nudges the runs that are listening; a ``listen`` reads
the events published since its run started, so an event emitted between the start of a
run and the start of its ``listen`` is not lost (each run consumes an event at most once).
Every event is published through :meth:`legato.AsyncClient.publish_event`, which calls
:func:`publish`: a blueprint's ``emit`` through its worker's client, the CLI and Python
callers through theirs (later webhooks too), so all take the one path.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import BlueprintFault, RunEnded, RunNotFound
from ..store import Store
from .expressions import evaluate, is_expression, strip, truthy

NUDGE = "legato.event"
"""The signal a listening run receives when an event is published."""

_REQUIRED = ("source", "type")


def envelope(attributes: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A CloudEvents 1.0 envelope from ``emit.event.with`` values (id and time filled in)."""
    missing = [name for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise BlueprintFault.standard(
            "validation", 400, f"an emitted event needs {' and '.join(missing)}"
        )
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(attributes.get("id") or uuid.uuid4()),
        "time": attributes.get("time")
        or datetime.fromtimestamp(now, tz=UTC).isoformat().replace("+00:00", "Z"),
    }
    event.update({k: v for k, v in attributes.items() if v is not None and k not in event})
    if "data" in event:
        event.setdefault("datacontenttype", "application/json")
    return event


async def publish(
    store: Store, attributes: Mapping[str, Any], now: float | None = None
) -> dict[str, Any]:
    """Store one event and nudge every listening run; return the envelope.

    What :meth:`legato.AsyncClient.publish_event` does; call that, not this.

    A listener whose run has ended (it failed or was cancelled mid-listen) can take no
    signal: it is dropped from the listeners instead of failing the publisher.
    """
    stamp = time.time() if now is None else now
    event = envelope(attributes, stamp)
    await store.append_event(json.dumps(event), str(event["type"]), str(event["source"]), stamp)
    for run_id in await store.listening_runs():
        try:
            await store.send_signal(run_id, NUDGE, None, stamp)
        except (RunNotFound, RunEnded):
            record = await store.get_run(run_id)
            if record is not None and not record.status.is_terminal:
                raise
            await store.set_listening(run_id, False, stamp)
    return event


async def emit_event(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The body of an ``emit`` step: publish through the worker's client.

    The event's id defaults to the step's idempotency key, so an emit repeated after a
    crash publishes an event consumers can recognise as the same one.
    """
    from ..runtime.commands import idempotency_key
    from ..worker.services import require_client

    client = require_client("emit")
    return await client.publish_event({"id": idempotency_key(), **attributes})


def matches(
    filter_: Mapping[str, Any], event: Mapping[str, Any], variables: Mapping[str, Any]
) -> bool:
    """True if ``event`` has every attribute ``filter_['with']`` asks for.

    A string is a regular expression the attribute must match entirely; ``${ }`` is
    evaluated on the attribute (for ``data``: on the data) and must be truthy; an object
    given for ``data`` must be contained in the event's data; anything else must be equal.
    """
    for name, wanted in (filter_.get("with") or {}).items():
        if name not in event:
            return False
        actual = event[name]
        if is_expression(wanted):
            if not truthy(evaluate(strip(wanted), actual, variables)):
                return False
        elif isinstance(wanted, str) and isinstance(actual, str):
            if wanted != actual and not _regex_matches(wanted, actual):
                return False
        elif isinstance(wanted, Mapping) and isinstance(actual, Mapping):
            if any(actual.get(k) != v for k, v in wanted.items()):
                return False
        elif wanted != actual:
            return False
    return True


def _regex_matches(pattern: str, text: str) -> bool:
    """A filter value is a regular expression; one that does not compile matches as text."""
    try:
        return re.fullmatch(pattern, text) is not None
    except re.error:
        return False
