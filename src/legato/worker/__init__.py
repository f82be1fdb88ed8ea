"""The worker: claims runs, executes them under leases, evicts waiting runs."""

from .worker import Worker

__all__ = ["Worker"]
