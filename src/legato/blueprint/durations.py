"""Durations in blueprints: ISO 8601 strings (``PT1M30S``) or ``{minutes: 1, seconds: 30}``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_ISO = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_UNITS = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0, "milliseconds": 0.001}


def parse_duration(value: Any) -> float:
    """Seconds in ``value``; ValueError (with what is accepted) for anything else.

    Years, months and weeks are refused: their length depends on the calendar.
    """
    if isinstance(value, str):
        match = _ISO.match(value.strip())
        if match is None or value.strip() in ("P", "PT") or value.strip().endswith("T"):
            raise ValueError(
                f"{value!r} is not an ISO 8601 duration such as 'PT30S', 'PT1H' or 'P2DT3H'"
            )
        return sum(float(v) * _UNITS[k] for k, v in match.groupdict().items() if v is not None)
    if isinstance(value, Mapping):
        unknown = set(value) - set(_UNITS)
        if unknown or not value:
            raise ValueError(
                "a duration object takes days, hours, minutes, seconds and milliseconds"
                + (f", not {', '.join(sorted(map(str, unknown)))}" if unknown else "")
            )
        total = 0.0
        for key, amount in value.items():
            if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
                raise ValueError(f"duration {key} must be a non-negative number, got {amount!r}")
            total += float(amount) * _UNITS[key]
        return total
    raise ValueError(f"expected a duration (ISO 8601 string or object), got {value!r}")
