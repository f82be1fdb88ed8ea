"""Blueprint source text: YAML or JSON read into plain values, with a line and column per node.

A blueprint author fixes a mistake faster when the message names the file, the line and
the column, so the loader keeps where every value came from: the text is composed into
YAML nodes (which carry marks) and the nodes are turned into plain ``dict``/``list``/scalar
values here, recording each node's position under its path, e.g. ``("do", 2, "charge")``.

Scalars resolve as in YAML 1.2: only ``true``/``false`` are booleans, so a ``schedule``'s
``on:`` key stays the string ``"on"`` and ``yes``/``no``/``off`` stay strings; dates stay
strings, as JSON has no date type. JSON is read by the same code (JSON is YAML), after a
strict JSON parse so that a JSON syntax error is reported as JSON's own.

Syntax errors and duplicate keys become :class:`Problem` values, never exceptions, so a
caller can report everything wrong with a file at once.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from .limits import Limits, current

__all__ = ["Path", "Problem", "SourceMap", "format_path", "load_source"]

Path = tuple[str | int, ...]
"""Where a value sits in a document: mapping keys and list indexes from the root."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a blueprint, and where it is."""

    file: str  # as given, e.g. "order.yaml" (or "<string>")
    line: int  # 1-based
    column: int  # 1-based
    path: str  # dotted DSL path: "do[2].charge.call"; "" for the document root
    message: str  # "unknown call type 'htp' (did you mean 'http'?)"

    def __str__(self) -> str:
        where = f" {self.path}:" if self.path else ""
        return f"{self.file}:{self.line}:{self.column}{where} {self.message}"


def format_path(path: Path) -> str:
    """``("do", 2, "charge", "call")`` as ``do[2].charge.call`` ("" for the root)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class SourceMap(Mapping[Path, tuple[int, int]]):
    """Path -> (line, column), both 1-based, of every value in a loaded document.

    A scalar or flow-style value (``[a, b]``) maps to where the value itself starts; a
    block mapping or list maps to the key that introduces it, as that is the line an
    author reads as "the ``with`` block". :meth:`key` gives the key's own position,
    which is where a problem about the key (an unknown one, a duplicate) belongs.
    """

    def __init__(self) -> None:
        self._values: dict[Path, tuple[int, int]] = {}
        self._keys: dict[Path, tuple[int, int]] = {}

    def __getitem__(self, path: Path) -> tuple[int, int]:
        return self._values[path]

    def __iter__(self) -> Iterator[Path]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def key(self, path: Path) -> tuple[int, int] | None:
        """The position of the mapping key that holds ``path``'s value, if it has one."""
        return self._keys.get(path)

    def _set(self, path: Path, position: tuple[int, int], key: tuple[int, int] | None) -> None:
        self._values[path] = position
        if key is not None:
            self._keys[path] = key


def load_source(
    text: str, filename: str = "<string>", limits: Limits | None = None
) -> tuple[Any, SourceMap, list[Problem]]:
    """Parse YAML or JSON ``text``: ``(value, positions, problems)``.

    ``value`` is None when the text cannot be parsed at all (``problems`` says why and
    where); otherwise it is the whole document, and ``problems`` lists duplicate keys and
    the like. JSON is recognised by a ``.json`` file name, or text that starts with ``{``.
    A document over one of the ``limits`` (default: :func:`legato.blueprint.limits.current`)
    is not parsed further: one problem names the limit and its setting.
    """
    limits = limits or current()
    positions = SourceMap()
    size = len(text) if len(text) * 4 <= limits.max_bytes else _utf8_size(text)
    if size > limits.max_bytes:
        message = _over("the document is", size, "bytes", "max_bytes", limits.max_bytes)
        return None, positions, [Problem(filename, 1, 1, "", message)]
    if _is_json(text, filename):
        problem = _json_syntax(text, filename, limits)
        if problem is not None:
            return None, positions, [problem]
    try:
        node = _compose(text, limits)
    except _LimitReached as exc:
        return None, positions, [_syntax_problem(exc, filename)]
    except RecursionError:  # a max_depth raised past what the parser's recursion allows
        message = (
            f"the document nests too deeply for the YAML parser; lower its nesting "
            f"(or {Limits.setting('max_depth')}, now {limits.max_depth})"
        )
        return None, positions, [Problem(filename, 1, 1, "", message)]
    except yaml.MarkedYAMLError as exc:
        problem = _syntax_problem(exc, filename)
        where = _enclosing_path(text, problem.line, limits)
        return None, positions, [dataclasses.replace(problem, path=where)]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        return None, positions, [_reader_problem(exc, text, filename)]
    except yaml.YAMLError as exc:  # not raised by the pure-Python loader; kept as a guard
        return None, positions, [Problem(filename, 1, 1, "", f"YAML error: {exc}")]
    if node is None:
        return None, positions, [Problem(filename, 1, 1, "", "the document is empty")]
    builder = _Builder(filename, positions, limits)
    try:
        value = builder.value(node, (), None)
    except _LimitReached as exc:
        return None, SourceMap(), [_syntax_problem(exc, filename)]
    except RecursionError:
        message = (
            f"the document nests too deeply to read; lower its nesting "
            f"(or {Limits.setting('max_depth')}, now {limits.max_depth})"
        )
        return None, SourceMap(), [Problem(filename, 1, 1, "", message)]
    if value is None:  # "~", "null", a bare tag: nothing to validate
        problem = Problem(filename, 1, 1, "", "the document is empty (null)")
        return None, positions, [*dict.fromkeys(builder.problems), problem]
    # An anchored node is built once per alias, so its problems can repeat: keep one each.
    return value, positions, list(dict.fromkeys(builder.problems))


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _over(what: str, size: int, unit: str, limit: str, value: float) -> str:
    return (
        f"{what} {size:,} {unit}; the limit is {value:,} (set {Limits.setting(limit)} to raise it)"
    )


class _LimitReached(yaml.MarkedYAMLError):
    """The document is over one of the :class:`Limits`: reported as it is, no context."""


def _compose(text: str, limits: Limits) -> yaml.Node | None:
    loader = _Loader(text)
    loader.max_depth = limits.max_depth
    try:
        return loader.get_single_node()
    except ValueError:  # PyYAML's chr() of an escape past U+10FFFF ("\U00110000")
        raise yaml.scanner.ScannerError(
            problem="an escape past \\U0010FFFF names no Unicode character",
            problem_mark=loader.get_mark(),
        ) from None
    finally:
        loader.dispose()


def _reader_problem(exc: yaml.reader.ReaderError, text: str, filename: str) -> Problem:
    at = min(max(exc.position, 0), len(text))
    line = text.count("\n", 0, at) + 1
    column = at - (text.rfind("\n", 0, at) + 1) + 1
    char = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
    return Problem(
        filename,
        line,
        column,
        "",
        f"character U+{char:04X} is not allowed in a YAML or JSON document; remove it",
    )


def _enclosing_path(text: str, line: int, limits: Limits) -> str:
    """The DSL path of the block a syntax error sits in, to name it in the message.

    The text above the bad line usually parses: the deepest mapping or list that starts
    there is where the bad line was meant to go (``do[0].getPet.with``). Only a few
    lines are given up before the search stops, so that a large broken document costs a
    few parses, not one per line.
    """
    lines = text.splitlines()[: max(0, line - 1)]
    for _ in range(_ENCLOSING_TRIES):
        if not lines:
            return ""
        try:
            node = _compose("\n".join(lines), limits)
            if node is None:
                return ""
            positions = SourceMap()
            value = _Builder("", positions, limits).value(node, (), None)
        except _LimitReached:
            return ""
        except yaml.YAMLError:
            lines.pop()
            continue
        # The last thing that starts above the bad line; a plain value's parent block.
        best = max(positions, key=lambda path: (positions[path][0], len(path)), default=())
        if best and _at(value, best) is not None and not isinstance(_at(value, best), dict | list):
            best = best[:-1]
        return format_path(best)
    return ""


_ENCLOSING_TRIES = 8


def _at(value: Any, path: Path) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def _is_json(text: str, filename: str) -> bool:
    return filename.lower().endswith(".json") or text.lstrip().startswith("{")


_PARSER_DEPTH = 500
"""Nesting that Python's JSON and YAML parsers handle before they run out of recursion."""


def _json_syntax(text: str, filename: str, limits: Limits) -> Problem | None:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return Problem(filename, exc.lineno, exc.colno, "", f"JSON syntax error: {exc.msg}")
    except RecursionError:  # hundreds of levels: past any max_depth below that
        if limits.max_depth < _PARSER_DEPTH:
            message = _over(
                "the document nests deeper than",
                limits.max_depth,
                "levels",
                "max_depth",
                limits.max_depth,
            )
        else:
            message = "the document nests too deeply for the JSON parser; lower its nesting"
        return Problem(filename, 1, 1, "", message)
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        return Problem(filename, 1, 1, "", f"JSON value error: {exc}")
    return None


def _syntax_problem(exc: yaml.MarkedYAMLError, filename: str) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = (exc.problem or "").strip()
    context = (exc.context or "").strip()
    started = exc.context_mark.line + 1 if exc.context_mark is not None else None
    if isinstance(exc, _LimitReached):
        message = problem
    elif "cannot start any token" in problem and "'\\t'" in problem:
        message = "bad indentation: a tab cannot indent YAML; indent with spaces"
    elif problem.startswith("expected <block end>") or problem.startswith(
        "expected <block mapping"
    ):
        where = f" (the block starts on line {started})" if started else ""
        message = (
            "bad indentation: this line does not line up with the keys or items above "
            f"it{where}; indent it like its siblings"
        )
    elif problem == "mapping values are not allowed here":
        message = (
            "bad indentation: a 'key:' is not allowed here; check this line's indentation, "
            "or quote a value that contains ': '"
        )
    elif problem.startswith("expected a single document"):
        message = "YAML syntax error: a blueprint is one document; remove the extra '---'"
    else:
        parts = [p for p in (context, problem) if p]
        message = "YAML syntax error: " + ", ".join(parts)
    return Problem(filename, line, column, "", message)


# --- YAML 1.2 core-schema scalars -------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """A safe loader whose implicit scalar types are YAML 1.2's, not YAML 1.1's, and
    that refuses nesting deeper than ``max_depth`` (PyYAML composes recursively, so a
    few hundred nested ``[`` would otherwise end in RecursionError)."""

    max_depth = Limits.max_depth
    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                message = _over(
                    "the document nests deeper than",
                    self.max_depth,
                    "levels",
                    "max_depth",
                    self.max_depth,
                )
                raise _LimitReached(problem=message, problem_mark=mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:merge", re.compile(r"^<<$"), ["<"])

_TAG = "tag:yaml.org,2002:"


def _short(text: str) -> str:
    """``text`` quoted for a message, cut in the middle if it is long."""
    return repr(text) if len(text) <= 60 else repr(f"{text[:28]}…{text[-28:]}")


def _scalar(node: yaml.ScalarNode) -> Any:
    """The Python value of a scalar node, by its (resolved or explicit) tag."""
    kind = node.tag.removeprefix(_TAG)
    text = node.value
    if kind == "null":
        return None
    if kind == "bool":
        return text.lower() == "true"
    if kind == "int":
        body = text.lstrip("+-")
        sign = -1 if text.startswith("-") else 1
        if body.startswith("0o"):
            return sign * int(body[2:], 8)
        if body.startswith("0x"):
            return sign * int(body[2:], 16)
        return sign * int(body.replace("_", ""), 10)
    if kind == "float":
        lowered = text.lower()
        if lowered.endswith(".inf"):
            return -math.inf if lowered.startswith("-") else math.inf
        if lowered == ".nan":
            return math.nan
        return float(text)
    return text


class _Builder:
    """Turns a composed node tree into plain values, recording positions and problems."""

    def __init__(self, filename: str, positions: SourceMap, limits: Limits) -> None:
        self.filename = filename
        self.positions = positions
        self.limits = limits
        self.problems: list[Problem] = []
        self._open: set[int] = set()  # node ids being built, to stop recursive aliases
        self._built = 0  # values built: an alias builds its node again, each time

    def value(self, node: yaml.Node, path: Path, key: yaml.Node | None) -> Any:
        self._built += 1
        if self._built > self.limits.max_values:
            message = _over(
                "the document expands to more than",
                self.limits.max_values,
                "values (each YAML alias repeats what its anchor holds)",
                "max_values",
                self.limits.max_values,
            )
            raise _LimitReached(problem=message, problem_mark=node.start_mark)
        if len(path) > self.limits.max_depth:  # aliases inside anchors nest further
            message = _over(
                "the document nests deeper than",
                self.limits.max_depth,
                "levels once its YAML aliases are expanded",
                "max_depth",
                self.limits.max_depth,
            )
            raise _LimitReached(problem=message, problem_mark=node.start_mark)
        start = (node.start_mark.line + 1, node.start_mark.column + 1)
        key_at = (key.start_mark.line + 1, key.start_mark.column + 1) if key is not None else None
        block = isinstance(node, yaml.CollectionNode) and not node.flow_style
        self.positions._set(path, key_at if block and key_at else start, key_at)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path, start)
        if id(node) in self._open:
            self._problem(start, path, "an alias refers to itself; a blueprint must be a tree")
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.value(item, (*path, i), None) for i, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: Path, start: tuple[int, int]) -> Any:
        if not node.tag.startswith(_TAG) or node.tag.removeprefix(_TAG) not in (
            "null",
            "bool",
            "int",
            "float",
            "str",
        ):
            tag = node.tag.replace(_TAG, "!!")
            self._problem(start, path, f"unsupported YAML tag '{tag}'; write a plain value")
            return node.value
        try:
            return _scalar(node)
        except ValueError:
            tag = node.tag.replace(_TAG, "!!")
            self._problem(start, path, f"{_short(node.value)} is not a valid '{tag}' value")
            return node.value

    def _mapping(self, node: yaml.MappingNode, path: Path) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        merges = [value for key, value in node.value if key.tag == f"{_TAG}merge"]
        for merged in merges:  # first, so that explicit keys override merged ones
            self._merge(result, merged, path)
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                self._problem(at, path, "a mapping key must be a plain value, not a collection")
                continue
            key = self._key(key_node, path)
            if key in seen:
                at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                self._problem(
                    at,
                    (*path, key),
                    f"duplicate key {key!r} (first defined on line {seen[key]}); "
                    "a key may appear once in a mapping",
                )
            seen[key] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, (*path, key), key_node)
        return result

    def _key(self, node: yaml.ScalarNode, path: Path) -> str:
        """A mapping key: its text as written, as in JSON, where keys are strings (``1:``
        or ``true:`` beside string keys made a dict the digest could not sort). A tagged
        key that does not parse (``!!float abc``) is reported."""
        if node.tag.startswith(_TAG):
            try:
                _scalar(node)
            except ValueError:
                at = (node.start_mark.line + 1, node.start_mark.column + 1)
                tag = node.tag.replace(_TAG, "!!")
                self._problem(at, path, f"key {_short(node.value)} is not a valid '{tag}' value")
        return str(node.value)

    def _merge(self, into: dict[Any, Any], node: yaml.Node, path: Path) -> None:
        """``<<: *anchor``: the anchored mapping(s) fill in keys not set explicitly."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                at = (source.start_mark.line + 1, source.start_mark.column + 1)
                self._problem(at, path, "'<<' merges a mapping (or a list of mappings)")
                continue
            for key, value in self._mapping(source, path).items():
                into.setdefault(key, value)  # an earlier merge source wins, as in YAML

    def _problem(self, at: tuple[int, int], path: Path, message: str) -> None:
        self.problems.append(Problem(self.filename, at[0], at[1], format_path(path), message))
