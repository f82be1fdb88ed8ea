"""A loaded, validated blueprint: the document, its identity and a digest of its content."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BlueprintInvalid

WORKFLOW_PREFIX = "blueprint:"
"""Runs of a blueprint belong to workflow ``blueprint:<namespace>/<name>``."""


@dataclass(frozen=True)
class Blueprint:
    """One version of a process, as written: immutable once published.

    ``digest`` is taken over the parsed document (not the text), so re-indenting a file or
    editing a comment does not make a new version; changing any value does.
    """

    namespace: str
    name: str
    version: str
    source: str
    filename: str
    document: dict[str, Any] = field(repr=False, compare=False)
    digest: str = ""

    @property
    def ref(self) -> str:
        """``namespace/name:version``, as the CLI and the client accept it."""
        return f"{self.namespace}/{self.name}:{self.version}"

    @property
    def workflow_name(self) -> str:
        """The workflow name its runs carry: ``blueprint:<namespace>/<name>``."""
        return workflow_name(self.namespace, self.name)


def workflow_name(namespace: str, name: str) -> str:
    return f"{WORKFLOW_PREFIX}{namespace}/{name}"


def digest_of(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_blueprint(
    text: str,
    filename: str = "<string>",
    *,
    functions: Collection[str] | None = None,
    kinds: Mapping[str, Callable[[Any], list[str]]] | None = None,
) -> Blueprint:
    """Parse and validate ``text``; raise :class:`legato.BlueprintInvalid` listing every problem.

    ``functions``: the custom function names the caller knows of (None: do not check
    names that are not defined in the document). ``kinds``: extension task kinds with
    their checks (default: the default app's, Legato's own included; pass
    ``app.kind_checks()`` to validate for another :class:`legato.App`).
    """
    from .bindings import kind_checks
    from .validation import check_text

    document, problems = check_text(
        text, filename, functions=functions, kinds=kinds if kinds is not None else kind_checks()
    )
    if problems:
        raise BlueprintInvalid(problems)
    return _from_document(text, filename, document)


def load_blueprint_file(path: str | Path, **options: Any) -> Blueprint:
    """:func:`load_blueprint` on a file's text (the file name is used in messages).

    Bytes that are not UTF-8 are a problem of the document (with its line and column),
    not a ``UnicodeDecodeError``; a file that cannot be read raises ``OSError``.
    """
    path = Path(path)
    return load_blueprint(decode_source(path.read_bytes(), str(path)), str(path), **options)


def decode_source(data: bytes, filename: str) -> str:
    """A document's bytes as text; raises BlueprintInvalid where they are not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        from .source import Problem

        before = data[: exc.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1 :].decode("utf-8", "replace")) + 1
        message = (
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot start or continue a "
            "character; save the file as UTF-8"
        )
        raise BlueprintInvalid([Problem(filename, line, column, "", message)]) from None


@functools.lru_cache(maxsize=256)
def parse_trusted(text: str, filename: str = "<string>") -> Blueprint:
    """A blueprint from text that was validated when its run started (no checks again).

    Runs carry their document's text; every replay of a run parses it, so the result is
    cached by text. No size limit applies: the document passed the limits in force where
    it was validated (perhaps raised there), and a worker with other limits must still
    replay the run.
    """
    from .limits import UNLIMITED
    from .source import load_source

    document, _positions, problems = load_source(text, filename, UNLIMITED)
    if problems or not isinstance(document, dict):
        raise BlueprintInvalid(problems or ["the document is not a mapping"])
    return _from_document(text, filename, document)


def _from_document(text: str, filename: str, document: dict[str, Any]) -> Blueprint:
    head = document["document"]
    return Blueprint(
        namespace=str(head["namespace"]),
        name=str(head["name"]),
        version=str(head["version"]),
        source=text,
        filename=filename,
        document=document,
        digest=digest_of(document),
    )
