"""The store: one implementation of everything Legato keeps, over any backend.

Every method is an operation of :mod:`legato.store.ops` written once (in the noun modules:
runs, signals, journal, lifecycle, claims, workers, blueprints, events) and run by the
backend's writer or reader. Methods that write on behalf of a worker take a
:class:`~legato.store.base.Lease` and are *fenced*: they change nothing and return
``False`` (or ``None``) when the run's lease epoch or owner no longer matches, so a worker
that lost its lease cannot write.

Times are seconds since the epoch (floats). ``now`` is the workflow clock (virtual in
tests); ``lease_now`` is always the real clock, because leases protect real processes.

Errors: a missing thing raises :class:`~legato.errors.NotFound`, a clash with the state
found raises :class:`~legato.errors.Conflict`, a database that cannot be used raises
:class:`~legato.errors.Unavailable`; driver exceptions never leave the store.
"""

from __future__ import annotations

from .blueprints import Blueprints
from .claims import Claims
from .events import Events
from .journal import Journal
from .lifecycle import Lifecycle
from .runs import Runs
from .signals import Signals
from .workers import Workers


class Store(Runs, Signals, Journal, Lifecycle, Claims, Workers, Blueprints, Events):
    """Persistence for runs, journals, signals, workers, blueprints and events.

    Make one with :func:`legato.store.open_store`; a backend (SQLite, PostgreSQL) adds
    only its connections, writer, SQL dialect and notification transport.
    """

    async def open(self) -> None:
        """Connect; fail with SchemaError if the schema is not current.

        SQLite upgrades its schema here; PostgreSQL needs :meth:`upgrade` first.
        """
        raise NotImplementedError

    async def upgrade(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied."""
        raise NotImplementedError

    async def close(self) -> None:
        """Flush pending writes and close connections."""
        raise NotImplementedError

    @property
    def stats(self) -> dict[str, int]:
        """Commits, operations and reads so far (for benchmarks and tests)."""
        raise NotImplementedError
