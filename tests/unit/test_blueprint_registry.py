"""Blueprint references: what ``[namespace/]name[:version]`` accepts and refuses."""

from __future__ import annotations

import pytest

import legato
from legato.blueprint.registry import format_ref, parse_ref


@pytest.mark.parametrize(
    ("ref", "parts"),
    [
        ("order", (None, "order", None)),
        ("order:1.2.0", (None, "order", "1.2.0")),
        ("shop/order", ("shop", "order", None)),
        ("shop/order:1.2.0-rc.1", ("shop", "order", "1.2.0-rc.1")),
        ("shop/order:latest", ("shop", "order", None)),
        (" order-2 ", (None, "order-2", None)),
    ],
)
def test_references_split_into_namespace_name_and_version(
    ref: str, parts: tuple[str | None, str, str | None]
) -> None:
    assert parse_ref(ref) == parts
    assert parse_ref(format_ref(*parts)) == parts


@pytest.mark.parametrize(
    ("ref", "says"),
    [
        ("", "incomplete"),
        ("shop/", "incomplete"),
        ("/order", "incomplete"),
        ("order:", "incomplete"),
        ("a/b/c", "namespace 'a/b'"),
        ("-order", "name '-order'"),
        ("order:v1", "not a semantic version"),
        ("order:1.2", "not a semantic version"),
    ],
)
def test_malformed_references_say_what_form_to_use(ref: str, says: str) -> None:
    with pytest.raises(legato.InvalidInput, match="blueprint reference") as refused:
        parse_ref(ref)
    message = str(refused.value)
    assert says in message
    assert "NAMESPACE/NAME:VERSION" in message or "MAJOR.MINOR.PATCH" in message
