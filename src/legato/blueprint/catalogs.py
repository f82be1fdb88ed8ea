"""Cataloged functions: ``call: name:version@catalog`` or ``call: <url of function.yaml>``.

A catalog is a tree of function definitions under its endpoint:
``<endpoint>/functions/<name>/<version>/function.yaml``. The definition is fetched once
per run, in a journalled step, so a replay uses the definition the run first saw.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from ..errors import BlueprintFault


def function_url(target: str, use: Mapping[str, Any]) -> str:
    if target.startswith(("http://", "https://", "file://")):
        return target
    reference, _, catalog_name = target.partition("@")
    name, _, version = reference.partition(":")
    catalog = (use.get("catalogs") or {}).get(catalog_name)
    if catalog is None:
        raise BlueprintFault.standard(
            "configuration", 400, f"catalog {catalog_name!r} is not defined under use.catalogs"
        )
    endpoint = catalog["endpoint"]
    root = endpoint if isinstance(endpoint, str) else endpoint["uri"]
    return f"{str(root).rstrip('/')}/functions/{name}/{version}/function.yaml"


async def fetch_function(target: str, use: Mapping[str, Any]) -> dict[str, Any]:
    """Download and parse a function definition (a task) from a catalog."""
    import httpx

    url = function_url(target, use)
    try:
        async with httpx.AsyncClient(follow_redirects=True, timeout=30) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise BlueprintFault.standard(
            "communication", 503, f"cannot fetch function {url}: {exc}"
        ) from exc
    if response.status_code != 200:
        raise BlueprintFault.standard(
            "communication",
            response.status_code,
            f"fetching function {url} gave HTTP {response.status_code}",
        )
    definition = yaml.safe_load(response.text)
    if not isinstance(definition, dict):
        raise BlueprintFault.standard(
            "configuration", 400, f"function {url} is not a task definition"
        )
    return definition
