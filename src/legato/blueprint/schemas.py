"""JSON Schema checks of a blueprint's input, output and exported context."""

from __future__ import annotations

from typing import Any

from ..errors import BlueprintFault


def check_schema(schema: Any, value: Any, what: str, pointer: str) -> None:
    """Raise the DSL ``validation`` error if ``value`` does not fit ``schema``.

    ``schema`` is a DSL schema object (``format`` defaults to JSON Schema; ``document``
    holds it inline). None means there is nothing to check. An external ``resource``
    schema is refused when the document is validated, so it never reaches here.
    """
    if not schema or not isinstance(schema, dict) or "document" not in schema:
        return
    import jsonschema

    validator_class = jsonschema.validators.validator_for(schema["document"])
    validator = validator_class(schema["document"])
    errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    first = errors[0]
    where = "/".join(str(part) for part in first.absolute_path) or "(root)"
    problem = BlueprintFault.standard(
        "validation",
        400,
        f"{what} does not match its schema at {where}: {first.message}"
        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
        "Validation error",
    )
    problem.problem["instance"] = pointer
    raise problem
