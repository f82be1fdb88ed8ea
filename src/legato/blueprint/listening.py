"""The ``listen`` task: a durable wait for events on Legato's bus.

The run reads the events published since it started (a journalled step, so a replay
sees the same events), offers each to the consumption strategy (``one``, ``all``,
``any`` with ``until``), and otherwise leaves memory until an emitter nudges it. A
timer wakes it now and then anyway, so a lost nudge only delays it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import BlueprintFault
from ..runtime import commands
from .events import NUDGE, matches
from .expressions import evaluate_value, interpolate, truthy

if TYPE_CHECKING:
    from .interpreter import Scope
    from .leaf_tasks import LeafTasks

POLL_EVERY = 30.0
"""Seconds between reads of the bus when no nudge arrives (a safety net)."""

READ_AT_ONCE = 100


class Consumption:
    """Which events a strategy takes and when it has had enough."""

    def __init__(self, to: Mapping[str, Any], data: Any, variables: Mapping[str, Any]) -> None:
        self.data = data
        self.variables = variables
        self.until: Any = None
        if "one" in to:
            self.mode, self.filters = "one", [to["one"]]
        elif "all" in to:
            self.mode, self.filters = "all", list(to["all"])
        else:
            self.mode, self.filters = "any", list(to.get("any") or [])
            self.until = to.get("until")
        self.matched = [False] * len(self.filters)
        self.expected: dict[str, Any] = {}
        self.stopper = (
            Consumption(self.until, data, variables) if isinstance(self.until, Mapping) else None
        )
        self.done = False

    def offer(self, event: dict[str, Any]) -> bool:
        """True if the event is consumed (part of the output); updates :attr:`done`."""
        if self.stopper is not None and self.stopper.wants(event):
            self.stopper.offer(event)
            self.done = self.stopper.done
            return False
        if self.mode == "any" and not self.filters:
            self.done = self.until is None
            return True
        for index, filter_ in enumerate(self.filters):
            if self.mode == "all" and self.matched[index]:
                continue
            if matches(filter_, event, self.variables) and self.correlated(filter_, event):
                self.matched[index] = True
                if self.mode == "all":
                    self.done = all(self.matched)
                else:
                    self.done = self.mode == "one" or self.until is None
                return True
        return False

    def might_take(self, event: dict[str, Any]) -> bool:
        """True if some filter (or an ``until`` filter) matches the event's attributes.

        Used where events are read, so a run's journal keeps only events it may use.
        """
        if self.mode == "any" and not self.filters:
            return True
        if self.stopper is not None and self.stopper.might_take(event):
            return True
        return any(matches(f, event, self.variables) for f in self.filters)

    def wants(self, event: dict[str, Any]) -> bool:
        return any(
            matches(f, event, self.variables) and self.correlated(f, event, peek=True)
            for f in self.filters
        )

    def correlated(self, filter_: Mapping[str, Any], event: Any, peek: bool = False) -> bool:
        for key, rule in (filter_.get("correlate") or {}).items():
            value = evaluate_value(rule["from"], event, self.variables)
            if rule.get("expect") is not None:
                # A constant, or a ``${ }`` expression on the task's input.
                expected = interpolate(rule["expect"], self.data, self.variables)
            elif key in self.expected:
                expected = self.expected[key]
            else:
                if not peek:
                    self.expected[key] = value
                continue
            if value != expected:
                return False
        return True


def read_value(event: dict[str, Any], read: str) -> Any:
    if read == "envelope":
        return event
    return event.get("data")


async def listen(
    leaves: LeafTasks,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    variables: dict[str, Any],
) -> Any:
    spec = task["listen"]
    read = str(spec.get("read") or "data")
    strategy = Consumption(spec["to"], data, variables)
    try:
        return await _consume(leaves, task, pointer, read, strategy, scope, variables)
    except BlueprintFault:
        await leaves.effect(f"{pointer}#done", _stop)  # a timed-out listen stops listening
        raise


async def _consume(
    leaves: LeafTasks,
    task: dict[str, Any],
    pointer: str,
    read: str,
    strategy: Consumption,
    scope: Scope,
    variables: dict[str, Any],
) -> Any:
    foreach = task.get("foreach")
    consumed: list[Any] = []
    taken = leaves.it.consumed_events  # events an earlier listen of the run consumed
    cursor = 0
    while not strategy.done:

        async def poll(after: int = cursor) -> dict[str, Any]:
            return await _poll(after, strategy.might_take)

        batch = await leaves.effect(pointer, poll)
        cursor = int(batch["cursor"])
        for event in batch["events"]:
            key = f"{event.get('source')}#{event.get('id')}"
            if key in taken:
                continue
            counted = strategy.stopper is not None and strategy.stopper.wants(event)
            if not strategy.offer(event):
                if counted:
                    taken.add(key)
                if strategy.done:
                    break
                continue
            taken.add(key)
            value = read_value(event, read)
            if foreach is not None:
                value = await _each(leaves, foreach, pointer, value, len(consumed), scope)
            consumed.append(value)
            if isinstance(strategy.until, str) and truthy(
                leaves.it.evaluate(strategy.until, consumed, variables, pointer)
            ):
                strategy.done = True
            if strategy.done:
                break
        if strategy.done:
            break
        if batch.get("more"):
            continue
        left = leaves.it.remaining(scope)
        if left is not None and left <= 0.001:
            raise BlueprintFault.standard("timeout", 408, "no matching event before the timeout")
        wait = POLL_EVERY if left is None else min(POLL_EVERY, left)
        await commands.wait_any(commands.signal(NUDGE), commands.timer(wait))
    await leaves.effect(f"{pointer}#done", _stop)
    return consumed


async def _each(
    leaves: LeafTasks,
    foreach: Mapping[str, Any],
    pointer: str,
    value: Any,
    index: int,
    scope: Scope,
) -> Any:
    item = str(foreach.get("item") or "item")
    at = str(foreach.get("at") or "index")
    inner = scope.bind(**{item: value, at: index})
    output = value
    if foreach.get("do"):
        output = await leaves.it.run_list(foreach["do"], f"{pointer}/foreach/do", value, inner)
    spec_output = foreach.get("output") or {}
    if spec_output.get("as") is not None:
        variables = leaves.it.variables(inner, None)
        output = leaves.it.evaluate(spec_output["as"], output, variables, pointer)
    return output


async def _poll(cursor: int, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Step body: mark the run as listening, then read what arrived since ``cursor``
    (only the events ``wanted`` may take are kept in the journal)."""
    from ..runtime.commands import step_info
    from ..worker.services import require_store

    store = require_store("listen")
    run_id = step_info().run_id
    await store.set_listening(run_id, True, time.time())
    run = await store.get_run(run_id)
    since = run.created_at if run is not None else 0.0
    events = await store.read_events(cursor, since, READ_AT_ONCE)
    last = events[-1].id if events else cursor
    more = len(events) >= READ_AT_ONCE
    kept = [e.envelope for e in events if wanted(e.envelope)]
    return {"cursor": last, "events": kept, "more": more}


async def _stop() -> None:
    from ..runtime.commands import step_info
    from ..worker.services import require_store

    await require_store("listen").set_listening(step_info().run_id, False, time.time())
