"""Helpers for testing workflows: a virtual clock that skips time, replay checks, and an
in-memory database (``memory_url()``) that runs the same SQL as the SQLite store."""

from .clock import VirtualClock
from .memory import forget, memory_url

# ``replay`` names the function, not the submodule: the from-import below binds it last.
from .replay import History, ReplayReport, assert_replays, replay

__all__ = [
    "History",
    "ReplayReport",
    "VirtualClock",
    "assert_replays",
    "forget",
    "memory_url",
    "replay",
]
