"""Named SQL read from a backend package's ``queries.sql`` and ``migrations/*.sql``."""

from __future__ import annotations

import re
from importlib import resources

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
