"""Published blueprints: publish a document, and find one again by reference.

A reference is ``[namespace/]name[:version]``. Published versions are immutable (the store
refuses other content under a version already taken), so a run started from
``order:1.0.0`` always runs the same document. Leaving the version out means the highest
published one; leaving the namespace out works while only one namespace uses the name.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..errors import BlueprintNotFound, InvalidInput
from ..records import BlueprintRecord, semver_key
from ..store import Store
from .document import Blueprint, load_blueprint

_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_REF_HELP = (
    "write it NAME, NAME:VERSION, NAMESPACE/NAME or NAMESPACE/NAME:VERSION (e.g. order:1.0.0)"
)


def parse_ref(ref: str) -> tuple[str | None, str, str | None]:
    """``"ns/name:1.2.0"`` -> ``("ns", "name", "1.2.0")``; absent parts are None.

    ``latest`` as the version means the highest published one, like no version at all.
    """
    text = ref.strip()
    path, colon, version = text.partition(":")
    namespace, slash, name = path.rpartition("/")
    if not name or (slash and not namespace) or (colon and not version):
        raise InvalidInput(f"blueprint reference {ref!r} is incomplete: {_REF_HELP}")
    for label, part in (("namespace", namespace), ("name", name)):
        if part and not _NAME.match(part):
            raise InvalidInput(
                f"blueprint reference {ref!r}: {label} {part!r} may only hold letters, digits "
                f"and '-' (not at either end), at most 63 characters; {_REF_HELP}"
            )
    if version == "latest":
        version = ""
    if version and semver_key(version)[0] == 0:
        raise InvalidInput(
            f"blueprint reference {ref!r}: version {version!r} is not a semantic version; "
            "give MAJOR.MINOR.PATCH, e.g. 1.0.0 (or leave it out for the latest)"
        )
    return namespace or None, name, version or None


def format_ref(namespace: str | None, name: str, version: str | None) -> str:
    """The reference text for parts as :func:`parse_ref` returns them."""
    head = f"{namespace}/{name}" if namespace else name
    return f"{head}:{version}" if version else head


async def publish(
    store: Store,
    blueprint_source: str,
    filename: str,
    *,
    functions: Collection[str] | None = None,
    kinds: Mapping[str, Callable[[Any], list[str]]] | None = None,
) -> BlueprintRecord:
    """Validate a document and publish it under its ``document`` namespace/name/version.

    Raises :class:`legato.BlueprintInvalid` (with every problem) if it is not valid, and
    :class:`legato.Conflict` if that version is already published with other content.
    Publishing the same content again returns the record already stored.
    ``functions``/``kinds`` are as for :func:`legato.blueprint.document.load_blueprint`.
    """
    blueprint = load_blueprint(blueprint_source, filename, functions=functions, kinds=kinds)
    return await publish_loaded(store, blueprint)


async def publish_loaded(store: Store, blueprint: Blueprint) -> BlueprintRecord:
    """Publish a blueprint already loaded (and so validated) with ``load_blueprint``."""
    return await store.publish_blueprint(
        blueprint.namespace,
        blueprint.name,
        blueprint.version,
        blueprint.digest,
        blueprint.source,
        time.time(),
    )


async def resolve(store: Store, ref: str) -> BlueprintRecord:
    """The published blueprint ``ref`` names (see :func:`parse_ref`).

    Raises BlueprintNotFound (listing what is published under that name) when nothing
    matches, and InvalidInput when a name without namespace is ambiguous.
    """
    namespace, name, version = parse_ref(ref)
    if namespace is None:
        namespace = await _only_namespace(store, name)
    record = await store.get_blueprint(namespace, name, version)
    if record is not None:
        return record
    versions = [r.version for r in await store.list_blueprints(namespace) if r.name == name]
    if versions:
        listed = ", ".join(sorted(versions, key=semver_key))
        raise BlueprintNotFound(
            f"blueprint {namespace}/{name} has no version {version}; published versions: "
            f"{listed} (leave the version out for the latest)"
        )
    raise BlueprintNotFound(
        f"no blueprint {namespace}/{name} is published: publish it first with "
        "`legato blueprint publish FILE`, and see what is published with `legato blueprint list`"
    )


async def _only_namespace(store: Store, name: str) -> str:
    """The namespace of the blueprints named ``name``, when exactly one has the name."""
    namespaces = sorted({r.namespace for r in await store.list_blueprints() if r.name == name})
    if len(namespaces) == 1:
        return namespaces[0]
    if not namespaces:
        raise BlueprintNotFound(
            f"no blueprint named {name!r} is published in any namespace: publish it first "
            "with `legato blueprint publish FILE`, and see what is published with "
            "`legato blueprint list`"
        )
    raise InvalidInput(
        f"blueprint name {name!r} is published in several namespaces "
        f"({', '.join(namespaces)}): say which, e.g. {namespaces[0]}/{name}"
    )
