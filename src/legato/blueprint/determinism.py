"""What a blueprint run records so that a replay takes the path its first execution took.

After a crash or an eviction the interpreter walks the document again from the top, on
recorded data. jq is deterministic on the same input, but three things an expression can
read are not recorded data: jq's ``now``, ``$secrets`` (read from the worker's
environment) and ``$runtime`` (the worker's version). So:

* every expression result that decides a path (``if``, ``for.in``, ``while``, ``switch``,
  a catch's or a retry's ``when``/``exceptWhen``, an extension's ``when``) is journalled
  as one ``decision`` entry named by the task's JSON pointer and what it decides
  (``/do/2/check#if``). A replay acts on the recorded value and does not evaluate the
  expression again; an expression that failed is recorded as ``{"fault": problem}`` and
  fails again the same way;
* jq's ``now`` anywhere else in the run (``input.from``, ``output.as``, a call's ``with``)
  reads the workflow's recorded clock: one ``now`` entry named ``<pointer>#now`` for each
  evaluation that calls it. Inside a decision or a step it reads the worker's clock, since
  the decision's or the step's result is what is recorded;
* a document that no longer matches its run's journal is reported in the document's
  terms (namespace/name, version, the task's pointer) with advice that fits blueprints,
  instead of the code workflows' message about Python lines and ``legato.patched``.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import BlueprintFault
from ..records import EntryKind, JournalEntry
from ..runtime.tasks import current_context
from . import expressions

if TYPE_CHECKING:
    from ..runtime.context import WorkflowContext
    from .document import Blueprint

current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "legato_blueprint_task", default=None
)
"""JSON pointer of the task the current asyncio task is running (None between tasks).

A context variable, so each ``fork`` branch has its own; it names ``now`` entries and
says where a non-determinism was found."""


def advice(run_id: str, seq: str) -> str:
    """What to do about a document that no longer matches its run (no Python, no patches)."""
    return (
        "A run replays the exact document it started with, so a published version must "
        "never change: publish the change as a new version (runs stay on the version they "
        "started on; new runs take the new one). This run is parked: to go on with the "
        f"document it now carries, run `legato runs reset {run_id} --to-step {seq}` (its "
        "journal from that position is dropped), or cancel it."
    )


class RunRecorder:
    """The recording side of one blueprint run: decisions, ``now``, mismatch messages."""

    def __init__(self, ctx: WorkflowContext, blueprint: Blueprint) -> None:
        self.ctx = ctx
        self.blueprint = blueprint
        self.clock: Callable[[], float] = ctx.host.now
        self.deciding = False

    def install(self) -> None:
        """Make this run's expressions read recorded time and its mismatches speak DSL.

        Called from the run's main task, so the clock (a context variable) reaches every
        task the run creates, step bodies included, and no other run.
        """
        # A function of the document and run id only: the context keeps it, and a hint
        # holding the context would make a reference cycle of every blueprint run.
        hint = functools.partial(mismatch_message, self.blueprint, self.ctx.run_id)
        self.ctx.mismatch_hint = hint
        expressions.clock.set(self.now)

    def decide(self, pointer: str, what: str, produce: Callable[[], Any]) -> Any:
        """The journalled result of ``produce`` (one ``decision`` entry ``pointer#what``).

        ``produce`` runs only the first time; a replay returns what it returned then, or
        raises the DSL error it raised then.
        """

        def first_time() -> Any:
            self.deciding = True  # produce is synchronous: no other task runs meanwhile
            try:
                return produce()
            except BlueprintFault as fault:
                fault.problem.setdefault("instance", pointer)
                return {"fault": fault.problem}
            finally:
                self.deciding = False

        value = self.ctx.recorded(EntryKind.DECISION, first_time, name=f"{pointer}#{what}")
        if isinstance(value, dict) and "fault" in value:  # no decision value is an object
            raise BlueprintFault(value["fault"])
        return value

    def now(self) -> float:
        """jq's ``now``: recorded in the run, live where the result is recorded anyway."""
        ctx = current_context()
        if ctx is not self.ctx or self.deciding:  # in a step body, or inside a decision
            return self.clock()
        pointer = current_task.get()
        name = f"{pointer}#now" if pointer else "now"
        return float(ctx.recorded(EntryKind.NOW, self.clock, name=name))


def mismatch_message(
    blueprint: Blueprint, run_id: str, seq: str, entry: JournalEntry, kind: EntryKind, name: str
) -> str:
    """The non-determinism message of a blueprint run (``name`` is "" when the run ended
    without reaching ``entry``): the document's terms, not the interpreter's code."""
    bp = blueprint
    head = f"blueprint {bp.namespace}/{bp.name} version {bp.version} (run {run_id})"
    recorded = f"{entry.kind.value} {entry.name!r}"
    if not name:
        pointer = entry.name.partition("#")[0] if entry.name.startswith("/") else ""
        where = f" (task {pointer})" if pointer else ""
        return (
            f"{head}: the journal has {recorded} at position {seq}{where}, which the "
            f"document no longer reaches. {advice(run_id, seq)}"
        )
    task = current_task.get()
    where = f"task {task}" if task else "the document's top level"
    return (
        f"{head}: at {where} the document does not match the run's journal: at "
        f"position {seq} the journal recorded {recorded}, but the document now gives "
        f"{kind.value} {name!r}. {advice(run_id, seq)}"
    )


__all__ = ["RunRecorder", "advice", "current_task", "mismatch_message"]
