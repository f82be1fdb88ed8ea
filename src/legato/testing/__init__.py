"""Helpers for testing workflows: a virtual clock that skips time."""

from .clock import VirtualClock

__all__ = ["VirtualClock"]
