"""JSON payloads typed by annotations.

Inputs, step results, signal data and run results are stored as JSON, never pickle.
Encoding accepts anything pydantic can dump (models, dataclasses, datetimes, enums,
plain JSON types); decoding validates against the annotation the receiving function
declares, so a step annotated ``-> Receipt`` gives back a ``Receipt`` on replay too.

A replay sees only what the journal holds: :func:`loads` of the stored text with the
receiving annotation. The first execution must see exactly that value too, or a workflow
branching on it (``isinstance``, ``is Tier.GOLD``) takes another path when it is replayed
and is parked. So the runtime hands the workflow ``loads(text, annotation)`` of the text it
just stored, never the object the step returned; and :func:`to_jsonable` gives plain JSON
types only (an enum member or a ``str`` subclass becomes a plain ``str``), so a value built
from it equals its JSON round trip.
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from .errors import PayloadError

# NaN and infinities stay floats (pydantic would turn them into null, so a float input
# became None and failed only at the worker): json.dumps refuses them, at the caller.
_ANY_ADAPTER: TypeAdapter[Any] = TypeAdapter(Any, config=ConfigDict(ser_json_inf_nan="constants"))
_adapters: dict[Any, TypeAdapter[Any]] = {}
_PLAIN = frozenset({str, int, float, bool, type(None)})  # exact types: not their subclasses


def _adapter(annotation: Any) -> TypeAdapter[Any]:
    if annotation is Any or annotation is inspect.Parameter.empty or annotation is None:
        return _ANY_ADAPTER
    try:
        adapter = _adapters.get(annotation)
    except TypeError:  # unhashable annotation: build it each time
        return TypeAdapter(annotation)
    if adapter is None:
        adapter = _adapters[annotation] = TypeAdapter(annotation)
    return adapter


def to_jsonable(value: Any, what: str) -> Any:
    """Turn ``value`` into plain JSON types, or raise PayloadError naming ``what``.

    Only exact JSON types come out (``dict`` with ``str`` keys, ``list``, ``str``, ``int``,
    ``float``, ``bool``, ``None``): subclasses such as ``StrEnum`` members are dumped to
    their plain value, tuples and sets to lists, as a JSON round trip would give them.
    """
    if type(value) in _PLAIN:
        return value
    try:
        return _ANY_ADAPTER.dump_python(value, mode="json")
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise PayloadError(
            f"{what} cannot be stored as JSON ({type(value).__name__}: {exc}); "
            "return JSON types, dataclasses or pydantic models"
        ) from exc


def dumps(value: Any, what: str) -> str:
    """Encode ``value`` as a JSON string (compact); ``what`` names it in errors."""
    plain = to_jsonable(value, what)
    try:
        return json.dumps(plain, separators=(",", ":"), allow_nan=False)
    except ValueError as exc:  # NaN or an infinity
        raise PayloadError(
            f"{what} cannot be stored as JSON ({exc}): JSON has no NaN or Infinity; "
            "send null or a string"
        ) from None
    except RecursionError:
        raise PayloadError(f"{what} is nested too deeply to be stored as JSON") from None


def parse_json(text: str, what: str) -> Any:
    """Parse JSON text a person or a remote caller wrote (``--input``, a request body).

    Every way it can be wrong is a :class:`PayloadError` (an ``InvalidInput``) naming
    ``what``: a syntax error with its line and column, nesting Python cannot parse, an
    integer of more digits than Python converts, and ``NaN``/``Infinity``, which
    Python's parser accepts but JSON does not have.
    """
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise PayloadError(
            f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:
        raise PayloadError(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        if "digits" in str(exc):  # Python's integer-conversion limit
            raise PayloadError(
                f"{what} has an integer of more digits than Legato reads "
                f"({sys.get_int_max_str_digits():,}); send it as a string"
            ) from None
        raise PayloadError(f"{what} is not valid JSON: {exc}") from None
    if _deeper_than(value, MAX_DEPTH):
        raise PayloadError(f"{what} is nested deeper than {MAX_DEPTH} levels")
    return value


MAX_DEPTH = 200
"""How deeply JSON a caller writes may nest (the same on every Python: how far a parser
recurses differs between versions)."""


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects more than ``limit`` deep (no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value; send null or a string")


def from_jsonable(data: Any, annotation: Any, what: str) -> Any:
    """Validate plain JSON ``data`` against ``annotation`` (models are rebuilt)."""
    adapter = _adapter(annotation)
    if adapter is _ANY_ADAPTER:
        return data
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "value"
        raise PayloadError(
            f"{what} does not fit {_type_name(annotation)}: {where}: {first.get('msg')}"
        ) from exc


def loads(text: str | None, annotation: Any, what: str) -> Any:
    """Decode a JSON string and validate it against ``annotation``.

    The one decoding of stored payloads: a replay decodes the journal with it, and the
    first execution decodes the text it just stored with it too, so both see one value.
    """
    if text is None:
        return None
    return from_jsonable(json.loads(text), annotation, what)


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or repr(annotation)


def json_schema(annotation: Any) -> dict[str, Any]:
    """The JSON Schema of what ``annotation`` accepts (``{}``: any JSON).

    What a client without the code checks a payload against (a declared signal's): the
    same type validates the payload again when the workflow receives it.
    """
    try:
        adapter = _adapter(annotation)
        if adapter is _ANY_ADAPTER:
            return {}
        return dict(adapter.json_schema(mode="validation"))
    except Exception as exc:  # pydantic raises several kinds for types without a schema
        raise PayloadError(
            f"type {_type_name(annotation)} has no JSON Schema ({exc}); use JSON types, "
            "dataclasses or pydantic models"
        ) from exc


def check_json(data: Any, schema: dict[str, Any], what: str) -> None:
    """Raise PayloadError naming ``what`` if plain JSON ``data`` does not fit ``schema``."""
    if not schema:
        return
    import jsonschema

    validator = jsonschema.validators.validator_for(schema)(schema)
    problem = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if problem is not None:
        where = ".".join(str(p) for p in problem.absolute_path) or "value"
        raise PayloadError(f"{what} does not fit its declared type: {where}: {problem.message}")
