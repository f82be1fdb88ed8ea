"""Clients: the one path for every action on runs, blueprints and events (sync and async)."""

from .checks import SignalSent
from .client import AsyncClient, RunHandle, RunPage
from .sync import Client

__all__ = ["AsyncClient", "Client", "RunHandle", "RunPage", "SignalSent"]
