"""Named SQL read from a backend package's ``queries.sql`` and ``migrations/*.sql``."""

from __future__ import annotations

import re
from importlib import resources

from ..errors import SchemaError

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def load_queries(package: str) -> dict[str, str]:
    """{name: statement} from ``-- name: x`` blocks of the package's queries.sql."""
    text = resources.files(package).joinpath("queries.sql").read_text()
    parts = _NAME.split(text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def load_migrations(package: str) -> list[tuple[int, str]]:
    """(version, script) for every ``NNNN_name.sql`` in the package's migrations/, in order."""
    folder = resources.files(package).joinpath("migrations")
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.read_text()))
    return sorted(found)


def split_statements(script: str) -> list[str]:
    """A migration script's statements (comments dropped, split on ';')."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def pending_migrations(
    known: list[tuple[int, str]], done: set[int], shown_url: str
) -> list[tuple[int, list[str]]]:
    """(version, statements) of each migration not yet in ``done``, in order.

    Refuses a database whose schema is newer than this Legato knows: it was upgraded by
    a later Legato, and this one would misread it.
    """
    newest = known[-1][0]
    if done and max(done) > newest:
        raise SchemaError(
            f"{shown_url} has schema version {max(done)}, newer than this Legato "
            f"knows ({newest}): upgrade Legato"
        )
    return [(v, split_statements(script)) for v, script in known if v not in done]
