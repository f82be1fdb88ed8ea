"""The DSL's example documents: each validates, or is rejected for a feature Legato lacks.

The examples are read in place from the shared conformance folder beside the repository
(never copied in). An example either loads with no problem at all, or is listed in
:data:`UNSUPPORTED_EXAMPLES` with the reason, and then must be rejected with a message
saying the feature is "not supported by Legato" (never with some other complaint).
"""

from __future__ import annotations

import pytest

from legato.blueprint.validation import check_text
from tests.conformance.folder import conformance_folder, require

EXAMPLES = conformance_folder() / "examples"
# The folder holds 67 entries: 66 example documents and a README.
EXPECTED_EXAMPLES = 66

_CONTAINER = "run: container (Legato does not start containers)"
UNSUPPORTED_EXAMPLES: dict[str, str] = {
    "call-asyncapi-publish.yaml": "call: asyncapi",
    "call-asyncapi-subscribe-consume-amount.yaml": "call: asyncapi",
    "call-asyncapi-subscribe-consume-forever-foreach.yaml": "call: asyncapi",
    "call-asyncapi-subscribe-consume-until.yaml": "call: asyncapi",
    "call-asyncapi-subscribe-consume-while.yaml": "call: asyncapi",
    "call-grpc.yaml": "call: grpc",
    "call-mcp.yaml": "call: mcp",
    "run-container-cleanup-always.yaml": _CONTAINER,
    "run-container-cleanup-eventually.yaml": _CONTAINER,
    "run-container-stdin-and-arguments.yaml": _CONTAINER,
    "run-container-with-name.yaml": _CONTAINER,
    "run-container-with-pull-policy.yaml": _CONTAINER,
    "run-container.yaml": _CONTAINER,
    "run-return-all.yaml": _CONTAINER,
    "run-return-code.yaml": _CONTAINER,
    "run-return-none.yaml": _CONTAINER,
    "run-return-stderr.yaml": _CONTAINER,
}


def example_names() -> list[str]:
    """Every example file name (none if the folder is absent: see require_examples)."""
    return sorted(path.name for path in EXAMPLES.glob("*.yaml")) if EXAMPLES.is_dir() else []


def require_examples() -> None:
    require(EXAMPLES, "DSL examples")


def test_every_example_is_accounted_for() -> None:
    require_examples()
    names = example_names()
    unsupported = [name for name in names if name in UNSUPPORTED_EXAMPLES]
    valid = [name for name in names if name not in UNSUPPORTED_EXAMPLES]
    print(f"{len(valid)} examples valid, {len(unsupported)} rejected as unsupported")
    assert len(names) == EXPECTED_EXAMPLES
    assert len(valid) + len(unsupported) == EXPECTED_EXAMPLES
    assert sorted(set(UNSUPPORTED_EXAMPLES) - set(names)) == []  # no stale entries
    assert (len(valid), len(unsupported)) == (49, 17)


@pytest.mark.parametrize("name", example_names() or ["<examples folder missing>"])
def test_example(name: str) -> None:
    require_examples()
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    document, problems = check_text(text, name)
    assert document is not None, [str(p) for p in problems]
    if name not in UNSUPPORTED_EXAMPLES:
        assert [str(p) for p in problems] == []
        return
    assert problems, f"{name} should be rejected: {UNSUPPORTED_EXAMPLES[name]}"
    for problem in problems:
        assert "not supported by Legato" in problem.message, str(problem)
        assert problem.file == name
