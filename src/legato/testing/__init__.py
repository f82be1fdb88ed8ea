"""Helpers for testing workflows: a virtual clock that skips time, and replay checks."""

from .clock import VirtualClock

# ``replay`` names the function, not the submodule: the from-import below binds it last.
from .replay import History, ReplayReport, assert_replays, replay

__all__ = ["History", "ReplayReport", "VirtualClock", "assert_replays", "replay"]
