"""Store operations written once, run by either backend.

An operation is a generator: it yields the statements it needs, by query name, and gets
each one's result back (``yield one("get_run", run_id=...)`` gives a row or None). It never
touches a connection, so the same code is driven synchronously on SQLite's writer thread
and asynchronously on a PostgreSQL connection; each backend only names its SQL (in its
``queries.sql``) and executes it. The store's logic (fencing, child start, suspension,
claims under flow control, redrive) therefore exists once, and a new capability adds its
operations in one module and its statements in the query files.

An operation also yields :class:`Notice` values: what its transaction changed that others
may wait for. The backend sends them after the commit (PostgreSQL also publishes them to
other processes with ``NOTIFY`` inside the transaction, so they arrive only if it commits).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

T = TypeVar("T")

Fetch = Literal["one", "all", "count"]


@dataclass(frozen=True, slots=True)
class Sql:
    """One named statement and its parameters, and what the operation wants back."""

    name: str
    params: Mapping[str, Any]
    fetch: Fetch


class NoticeKind(enum.Enum):
    WORK = "work"
    """Something became runnable (or a queue slot freed): idle workers look for work."""
    ARRIVED = "arrived"
    """A signal, cancel request or child's end arrived for ``run_id`` (held in memory)."""
    STATUS = "status"
    """``run_id`` changed status (to ``status``): the change feed, ``AsyncClient.wait``."""


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    run_id: str = ""
    status: str = ""

    def encode(self) -> str:
        """The text sent between processes (PostgreSQL ``NOTIFY`` payloads)."""
        return f"{self.kind.value}:{self.run_id}:{self.status}"

    @classmethod
    def decode(cls, text: str) -> Notice:
        kind, _, rest = text.partition(":")
        run_id, _, status = rest.rpartition(":")
        try:
            return cls(NoticeKind(kind), run_id, status)
        except ValueError:  # a payload from an older Legato: treat as "look for work"
            return cls(NoticeKind.WORK)


WORK = Notice(NoticeKind.WORK)


def arrived(run_id: str) -> Notice:
    return Notice(NoticeKind.ARRIVED, run_id)


def status_changed(run_id: str, status: str) -> Notice:
    return Notice(NoticeKind.STATUS, run_id, status)


Step = Sql | Notice
Op = Generator[Step, Any, T]
"""An operation: yields statements and notices, returns its result."""


def one(query: str, /, **params: Any) -> Sql:
    """The first row (a mapping by column name), or None."""
    return Sql(query, params, "one")


def rows(query: str, /, **params: Any) -> Sql:
    """Every row."""
    return Sql(query, params, "all")


def count(query: str, /, **params: Any) -> Sql:
    """How many rows the statement changed."""
    return Sql(query, params, "count")


def drive(op: Op[T], execute: Callable[[Sql], Any], notices: list[Notice]) -> T:
    """Run ``op`` to its end with a blocking ``execute`` (SQLite's writer and readers)."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Notice):
                notices.append(step)
                step = op.send(None)
            else:
                step = op.send(execute(step))
    except StopIteration as done:
        result: T = done.value
        return result


async def drive_async(
    op: Op[T], execute: Callable[[Sql], Awaitable[Any]], notices: list[Notice]
) -> T:
    """Run ``op`` to its end with an awaitable ``execute`` (PostgreSQL)."""
    try:
        step = next(op)
        while True:
            if isinstance(step, Notice):
                notices.append(step)
                step = op.send(None)
            else:
                step = op.send(await execute(step))
    except StopIteration as done:
        result: T = done.value
        return result
