"""What a client checks before it acts: a reused run id, a signal's name and payload, and
which live workers can serve a run.

Pure functions over records the client read: :class:`legato.AsyncClient` calls them, so
every front door (Python, the ``legato`` command, an HTTP API) refuses the same things
with the same words.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, InvalidInput
from ..payload import check_json, to_jsonable
from ..records import EntryKind, EntryStatus, JournalEntry, RunRecord, WorkerRecord
from ..runtime.definitions import Workflow


# -- run ids -------------------------------------------------------------------------------
def reuse_problem(
    existing: RunRecord, workflow: str, encoded_input: str | None, definition: Any, attach: bool
) -> Conflict | None:
    """Why a start that found ``existing`` under its id must be refused, or None.

    A run id names one run: a start of another workflow under it is always refused, as
    is one of the same workflow with other input, unless the caller asked to ``attach``
    to the run that is there. The same workflow with the same input is a retried start
    and gets the existing run (``created=False``).
    """
    if existing.workflow != workflow:
        return Conflict(
            f"run id {existing.run_id!r} is taken by a run of workflow {existing.workflow!r} "
            f"({existing.status.value}), so it cannot name a run of {workflow!r}: choose "
            "another id (a run id names one run, whatever its workflow)"
        )
    if attach or _same_input(existing.input, encoded_input, definition):
        return None
    return Conflict(
        f"run id {existing.run_id!r} is taken by a run of {workflow!r} "
        f"({existing.status.value}) started with other input ({_short(existing.input)}): "
        "choose another id for a new run, or attach to that one (attach=True; the "
        "command's --attach) to follow it"
    )


def _same_input(stored: str | None, given: str | None, definition: Any) -> bool:
    old = json.loads(stored) if stored else None
    new = json.loads(given) if given else None
    if isinstance(definition, Workflow):
        return bool(_bound(definition, old) == _bound(definition, new))
    if _is_blueprint_input(old) and _is_blueprint_input(new):
        # The file a draft was read from does not matter; its text and input do.
        return bool(_without_filename(old) == _without_filename(new))
    return bool(old == new)


def _bound(wf: Workflow[Any, Any], encoded: Any) -> Any:
    """Arguments by parameter name, defaults filled in: ``f(1, b=2)`` is ``f(a=1, b=2)``."""
    try:
        args, kwargs = encoded
        bound = wf.signature.bind(*args, **kwargs)
    except (TypeError, ValueError):
        return encoded
    bound.apply_defaults()
    try:
        return {k: to_jsonable(v, "input") for k, v in bound.arguments.items()}
    except InvalidInput:
        return encoded


def _is_blueprint_input(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], list)
        and len(value[0]) == 1
        and isinstance(value[0][0], dict)
        and "source" in value[0][0]
    )


def _without_filename(value: Any) -> Any:
    payload = dict(value[0][0])
    payload.pop("filename", None)
    return payload


def _short(text: str | None, limit: int = 80) -> str:
    shown = text or "no input"
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# -- signals ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SignalSent:
    """What :meth:`legato.AsyncClient.signal` did: the signal is buffered for the run.

    ``waiting``: the run waits for this name now (it wakes with it). ``awaited``: the
    names the run waits for now. ``declared``: the names its workflow declares (None:
    it declares none). ``note`` says why the signal may never be taken, when that is so.
    """

    run_id: str
    name: str
    waiting: bool
    awaited: tuple[str, ...]
    declared: tuple[str, ...] | None

    @property
    def note(self) -> str | None:
        """None when the run waits for the signal or its workflow declares it; else a
        warning naming what the run waits for (the name may be mistyped)."""
        if self.waiting or self.declared is not None:
            return None
        now = ", ".join(repr(n) for n in self.awaited) or "no signal"
        return (
            f"run {self.run_id} does not wait for signal {self.name!r} now (it waits for "
            f"{now}); it is kept until the run waits for it. If the name is mistyped, send "
            "the right one; a workflow that declares its signals "
            "(@legato.workflow(signals=...)) has unknown names refused"
        )


def awaited_signals(run: RunRecord, journal: Sequence[JournalEntry]) -> dict[str, dict[str, Any]]:
    """The signals the run waits for now, by name, with the JSON Schema each wait checks
    its payload against (``{}``: any JSON): from its waiting journal entries (a run in a
    worker's memory) and its wake condition (a run evicted while it waits)."""
    found: dict[str, dict[str, Any]] = {name: {} for name in run.wait_signals}
    for entry in journal:
        if entry.status is not EntryStatus.WAITING:
            continue
        if entry.kind is EntryKind.SIGNAL:
            recorded = json.loads(entry.input) if entry.input else {}
            found[entry.name] = recorded.get("type") or found.get(entry.name) or {}
        elif entry.kind is EntryKind.WAIT_ANY:
            for part in entry.name.split("|"):
                kind, _, name = part.partition(":")
                if kind == "signal":
                    found.setdefault(name, {})
    return found


def check_signal(
    run: RunRecord,
    name: str,
    data: Any,
    awaited: Mapping[str, dict[str, Any]],
) -> Any:
    """Refuse a signal no wait of the run will ever take, or data that does not fit the
    type the run waits for (or its workflow declares); return the data as plain JSON.

    InvalidInput for a name its workflow does not declare and the run does not wait for
    now (naming what it declares and what the run waits for); PayloadError (an
    InvalidInput) for data that does not fit.
    """
    what = f"data of signal {name!r}"
    plain = to_jsonable(data, what)
    declared = run.declared_signals()
    # A name the run waits for now is taken whatever it recorded at its start: code
    # deployed since may declare (and wait for) more than the run's record says.
    if declared is not None and name not in declared and name not in awaited:
        waits = ", ".join(repr(n) for n in sorted(awaited)) or "no signal"
        raise InvalidInput(
            f"run {run.run_id} ({run.workflow}) takes no signal {name!r}: its workflow "
            f"declares {_listed(declared)}; it waits for {waits} now"
        )
    schema = awaited.get(name) or (declared or {}).get(name) or {}
    check_json(plain, schema, f"{what} for run {run.run_id}")
    return plain


def _listed(names: Mapping[str, Any]) -> str:
    return ", ".join(repr(n) for n in sorted(names)) or "none"


# -- serving ---------------------------------------------------------------------------
def servers(run: RunRecord, workers: Sequence[WorkerRecord], now: float) -> list[WorkerRecord]:
    """The live workers (by their last heartbeat) that would claim ``run``."""
    return [w for w in workers if w.alive(now) and w.can_serve(run)]


def start_worker_hint(run: RunRecord, app_hint: str = "FILE.py") -> str:
    """The command that starts a worker able to run ``run``."""
    if run.workflow.startswith("blueprint:") and not run.requires:
        return f"legato worker --queue {run.queue}"  # every worker serves blueprints
    needs = f" (an app that registers {', '.join(run.requires)})" if run.requires else ""
    return f"legato worker --app {app_hint} --queue {run.queue}{needs}"
