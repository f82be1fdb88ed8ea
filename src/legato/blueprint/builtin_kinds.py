"""Legato's own extension task kinds (namespace ``legato``).

``legato:wait-signal`` waits durably for a signal sent to the run (``legato signal RUN
NAME --data JSON`` or ``client.signal``) and outputs its data: an approval, a callback.
``with``: ``signal`` (its name, required) and ``timeout`` (a duration; on expiry the task
raises the DSL ``timeout`` error, which a ``try`` can catch to escalate).
"""

from __future__ import annotations

from typing import Any

from ..apps import BUILTINS
from ..errors import BlueprintFault, WaitTimeout
from ..runtime import commands
from .bindings import KindCall
from .durations import parse_duration
from .expressions import is_expression


def _check_wait_signal(value: Any) -> list[str]:
    if not isinstance(value, dict):
        return ["legato:wait-signal needs `with: {signal: <name>}`"]
    problems = []
    if not isinstance(value.get("signal"), str) or not value.get("signal"):
        problems.append("legato:wait-signal needs `signal`: the name of the signal to wait for")
    if value.get("timeout") is not None and not is_expression(value["timeout"]):
        try:
            parse_duration(value["timeout"])
        except ValueError as exc:
            problems.append(f"timeout: {exc}")
    unknown = sorted(set(value) - {"signal", "timeout"})
    if unknown:
        problems.append(f"legato:wait-signal takes signal and timeout, not {', '.join(unknown)}")
    return problems


@BUILTINS.task_kind(
    "legato:wait-signal",
    check=_check_wait_signal,
    summary="wait durably for a signal sent to the run; output its data",
)
async def wait_signal(call: KindCall) -> Any:
    limits = [parse_duration(call.arguments["timeout"])] if call.arguments.get("timeout") else []
    if call.timeout is not None:
        limits.append(call.timeout)
    try:
        return await commands.wait_for_signal(
            str(call.arguments["signal"]), min(limits) if limits else None
        )
    except WaitTimeout as exc:
        raise BlueprintFault.standard(
            "timeout", 408, f"no signal {call.arguments['signal']!r} before the timeout"
        ) from exc
