"""Clients: start, signal, cancel and inspect runs (sync and async)."""

from .client import AsyncClient, Client, RunHandle

__all__ = ["AsyncClient", "Client", "RunHandle"]
