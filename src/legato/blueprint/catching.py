"""``try``/``catch``: which errors a catch takes, and when its retry policy tries again.

Whether a catch takes an error and whether a policy retries are decisions: when they
involve an expression (``when``, ``exceptWhen``) they are journalled, so a replay catches
and retries exactly as the first execution did (see :mod:`.determinism`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import BlueprintFault
from ..runtime import commands
from .durations import parse_duration

if TYPE_CHECKING:
    from .interpreter import Interpreter, Scope


async def run_try(
    it: Interpreter,
    task: dict[str, Any],
    pointer: str,
    data: Any,
    scope: Scope,
    variables: dict[str, Any],
) -> Any:
    """Run the ``try`` list; on an error the catch takes, retry it or run ``catch.do``."""
    catch = task.get("catch") or {}
    error_name = catch.get("as") or "error"
    policy = retry_policy(it.use, catch.get("retry"))
    attempt = 0
    first_failure: float | None = None
    while True:
        try:
            return await it.run_list(task["try"], f"{pointer}/try", data, scope)
        except BlueprintFault as fault:
            error = fault.problem
            caught = {**variables, error_name: error}
            if not error_matches((catch.get("errors") or {}).get("with"), error):
                raise
            if not conditions_hold(it, catch, pointer, "catch", data, caught):
                raise
            if policy is not None:
                now = commands.now().timestamp()
                first_failure = first_failure if first_failure is not None else now
                elapsed = now - first_failure
                if may_retry(it, policy, attempt, elapsed, data, caught, pointer):
                    attempt += 1
                    delay = retry_delay(policy, attempt)
                    if delay > 0:
                        await commands.sleep(delay)
                    continue
            if catch.get("do"):
                return await it.run_list(
                    catch["do"], f"{pointer}/catch/do", data, scope.bind(**{error_name: error})
                )
            return data


def conditions_hold(
    it: Interpreter,
    spec: Mapping[str, Any],
    pointer: str,
    what: str,
    data: Any,
    variables: Mapping[str, Any],
) -> bool:
    """``when`` holds and ``exceptWhen`` does not (a catch's or a retry policy's), as one
    decision ``pointer#what``; True without a journal entry when ``spec`` has neither."""
    when, unless = spec.get("when"), spec.get("exceptWhen")
    if when is None and unless is None:
        return True

    def holds() -> bool:
        if when is not None and not it.holds(when, data, variables, pointer):
            return False
        return unless is None or not it.holds(unless, data, variables, pointer)

    return bool(it.decide(pointer, what, holds))


# -- retry policies -------------------------------------------------------------------------
def retry_policy(use: Mapping[str, Any], retry: Any) -> dict[str, Any] | None:
    """The policy a catch's ``retry`` gives inline or names under ``use.retries``."""
    if retry is None:
        return None
    if isinstance(retry, str):
        policy: dict[str, Any] = (use.get("retries") or {})[retry]
        return policy
    return dict(retry)


def may_retry(
    it: Interpreter,
    policy: dict[str, Any],
    attempt: int,
    elapsed: float,
    data: Any,
    variables: dict[str, Any],
    pointer: str,
) -> bool:
    limit = policy.get("limit") or {}
    count = (limit.get("attempt") or {}).get("count")
    if count is not None and attempt >= int(count):
        return False
    if limit.get("duration") is not None and elapsed >= parse_duration(limit["duration"]):
        return False
    return conditions_hold(it, policy, pointer, "retry", data, variables)


def retry_delay(policy: dict[str, Any], attempt: int) -> float:
    """Seconds before retry number ``attempt``: the delay, its back-off, a recorded jitter."""
    delay = parse_duration(policy["delay"]) if policy.get("delay") is not None else 0.0
    backoff = policy.get("backoff") or {}
    if "linear" in backoff:
        delay *= attempt
    elif "exponential" in backoff:
        delay *= 2 ** (attempt - 1)
    jitter = policy.get("jitter")
    if jitter:
        low, high = parse_duration(jitter["from"]), parse_duration(jitter["to"])
        delay += low + (high - low) * commands.random()
    return delay


# -- matching errors ------------------------------------------------------------------------
_STANDARD = re.compile(r"/(?:spec/[^/]+/errors|dsl/errors/types)/([a-z]+)$")


def _error_type_matches(wanted: str, actual: str) -> bool:
    """Equal types match; so do two spellings of the same standard type.

    The DSL's standard types are ``.../spec/<version>/errors/<kind>``; the conformance
    kit also writes ``.../dsl/errors/types/<kind>``. Both name one kind of error.
    """
    if wanted == actual:
        return True
    a, b = _STANDARD.search(wanted), _STANDARD.search(actual)
    return a is not None and b is not None and a.group(1) == b.group(1)


def error_matches(filter_: Mapping[str, Any] | None, error: Mapping[str, Any]) -> bool:
    """Does ``error`` (a problem) match a catch's ``errors.with``?"""
    if not filter_:
        return True
    for key, wanted in filter_.items():
        actual = error.get(key)
        if key == "type" and isinstance(wanted, str) and isinstance(actual, str):
            if not _error_type_matches(wanted, actual):
                return False
        elif actual != wanted and str(actual) != str(wanted):
            return False
    return True
