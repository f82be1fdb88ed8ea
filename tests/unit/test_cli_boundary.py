"""The CLI acts only through the client: it never reaches the store or the modules that
write to it.

:class:`legato.AsyncClient` is the one path for every action (where an audit record or a
permission check will sit); a command that touched the store directly would bypass it.
This reads the CLI's source (its syntax tree, not its text) and names each violation.
"""

from __future__ import annotations

import ast
from pathlib import Path

import legato.cli

CLI = Path(legato.cli.__file__).parent
PACKAGE = "legato.cli"

# The only name the CLI may take from the store package: the default database URL, which
# its --db option shows. Everything else of it is the client's business.
ALLOWED_FROM_STORE = {"DEFAULT_URL"}
# Modules whose functions take a store and act on it; the client calls them, the CLI calls
# the client.
STORE_ACTORS = ("legato.blueprint.registry", "legato.blueprint.events", "legato.worker.services")


def _absolute(module: str | None, level: int) -> str:
    """The absolute module name of an import in a module of ``legato.cli``."""
    if level == 0:
        return module or ""
    base = PACKAGE.split(".")[: len(PACKAGE.split(".")) - (level - 1)]
    return ".".join([*base, module] if module else base)


def _is_store_module(name: str) -> bool:
    return name == "legato.store" or name.startswith("legato.store.")


def _is_store_actor(name: str) -> bool:
    return any(name == m or name.startswith(m + ".") for m in STORE_ACTORS)


def violations(source: str, filename: str) -> list[str]:
    """Each place in ``source`` that touches the store other than through the client."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and node.attr == "store":
            found.append(f"{where}: attribute .store (use a client method)")
        elif isinstance(node, ast.Name) and node.id == "open_store":
            found.append(f"{where}: open_store (use legato.AsyncClient(url))")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _is_store_module(alias.name) or _is_store_actor(alias.name):
                    found.append(f"{where}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module, node.level)
            names = {alias.name for alias in node.names}
            if _is_store_module(module) and not names <= ALLOWED_FROM_STORE:
                taken = ", ".join(sorted(names - ALLOWED_FROM_STORE))
                found.append(f"{where}: from {module} import {taken}")
            elif _is_store_actor(module):
                found.append(f"{where}: from {module} import {', '.join(sorted(names))}")
            elif module == "legato" and names & {"store"}:
                found.append(f"{where}: from legato import store")
            elif module == "legato.blueprint" and names & {"registry", "events"}:
                found.append(f"{where}: from legato.blueprint import {', '.join(sorted(names))}")
    return sorted(found, key=lambda v: int(v.split(":")[1]))


def test_the_cli_never_touches_the_store() -> None:
    files = sorted(CLI.glob("*.py"))
    assert len(files) >= 5, f"expected the CLI's modules in {CLI}"
    found = [v for path in files for v in violations(path.read_text(), path.name)]
    assert not found, "the CLI must act through legato.AsyncClient:\n" + "\n".join(found)


def test_the_check_catches_each_way_in() -> None:
    """The check itself: each form of reaching the store is reported, and nothing else."""
    caught = """\
from ..store import DEFAULT_URL, open_store
from ..store.base import Store
from ..blueprint.registry import resolve
from ..blueprint import events
from .. import store
import legato.store.sqlite
async def go(client, url):
    await client.store.list_workers()
    await open_store(url).upgrade()
"""
    found = violations(caught, "app.py")
    assert [v.split(":")[1] for v in found] == ["1", "2", "3", "4", "5", "6", "8", "9"], found
    fine = """\
from ..store import DEFAULT_URL
from ..client import AsyncClient
from ..blueprint.document import load_blueprint
async def go(client):
    return await client.list_workers(), client.stored
"""
    assert violations(fine, "app.py") == []
