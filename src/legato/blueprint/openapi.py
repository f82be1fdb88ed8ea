"""OpenAPI calls of blueprints (``call: openapi``): an operation named by its id.

The blueprint names an API description (OpenAPI 3 or Swagger 2, JSON or YAML), an
``operationId`` and the operation's parameters by name. This module reads the description,
finds the operation, places each parameter where the description says (path, query, header,
cookie or body) and hands the request to :mod:`legato.blueprint.http`, so both kinds of call
share authentication, error types and output shapes.

Descriptions are fetched once per URI and kept for the life of the process: they change far
less often than they are called, and a workflow calling an API in a loop should not fetch its
description on every iteration.
"""

from __future__ import annotations

import base64
import difflib
import json
import logging
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import yaml

from ..errors import BlueprintFault
from .http import (
    DEFAULT_TIMEOUT,
    OutgoingRequest,
    endpoint_parts,
    output_mode,
    redirect_flag,
    send,
)

log = logging.getLogger(__name__)

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_SEPARATORS = {"csv": ",", "ssv": " ", "tsv": "\t", "pipes": "|"}
_STYLE_SEPARATORS = {"form": ",", "spaceDelimited": " ", "pipeDelimited": "|"}
_MAX_REF_DEPTH = 32

_documents: dict[str, Mapping[str, Any]] = {}  # description URI -> parsed description


@dataclass(frozen=True)
class Operation:
    """One operation of a description, with the path-level parameters merged in."""

    path: str
    method: str
    spec: Mapping[str, Any]
    parameters: tuple[Mapping[str, Any], ...]
    servers: tuple[Mapping[str, Any], ...]


async def perform_openapi(
    args: Mapping[str, Any],
    *,
    task_input: Any,
    authentications: Mapping[str, Any],
    secrets: Mapping[str, Any],
    client: httpx.AsyncClient | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Any:
    """Run a ``call: openapi`` task whose ``with`` map (``args``) is already evaluated.

    The keyword arguments mean what they mean for
    :func:`~legato.blueprint.http.perform_http`. Returns the task's output in the shape
    ``args["output"]`` asks for; raises :class:`BlueprintFault`: ``configuration`` for an
    unknown operation, ``validation`` for a missing required parameter, ``communication`` for
    a failed request.
    """
    if client is None:
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT) as own_client:
            return await perform_openapi(
                args,
                task_input=task_input,
                authentications=authentications,
                secrets=secrets,
                client=own_client,
                variables=variables,
            )
    context = {
        "task_input": task_input,
        "authentications": authentications,
        "secrets": secrets,
        "variables": variables,
        "client": client,
    }
    document = args.get("document")
    endpoint = document.get("endpoint") if isinstance(document, Mapping) else document
    doc_uri, doc_auth = endpoint_parts(endpoint, what="the OpenAPI 'document'")
    description = await load_description(doc_uri, doc_auth, **context)
    operation_id = args.get("operationId")
    if not isinstance(operation_id, str) or not operation_id:
        raise _configuration("an OpenAPI call needs an 'operationId'")
    operation = find_operation(description, operation_id, doc_uri)
    parameters = args.get("parameters") or {}
    if not isinstance(parameters, Mapping):
        raise _configuration(f"parameters must be a map of names to values, not {parameters!r}")
    request = build_request(description, operation, doc_uri, parameters)
    return await send(
        request,
        authentication=args.get("authentication"),
        output=output_mode(args.get("output")),
        redirect=redirect_flag(args.get("redirect")),
        **context,
    )


async def load_description(
    uri: str,
    authentication: Any,
    *,
    task_input: Any,
    authentications: Mapping[str, Any],
    secrets: Mapping[str, Any],
    variables: Mapping[str, Any] | None,
    client: httpx.AsyncClient,
) -> Mapping[str, Any]:
    """The parsed description at ``uri`` (JSON or YAML), fetched once per process."""
    cached = _documents.get(uri)
    if cached is not None:
        return cached
    raw = await send(
        OutgoingRequest("GET", uri, {"Accept": "application/json, application/yaml, */*"}),
        authentication=authentication,
        output="raw",
        redirect=True,
        task_input=task_input,
        authentications=authentications,
        secrets=secrets,
        variables=variables,
        client=client,
    )
    text = base64.b64decode(raw or "").decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _configuration(f"the OpenAPI document at {uri} is not JSON or YAML") from exc
    if not isinstance(parsed, Mapping) or not ("openapi" in parsed or "swagger" in parsed):
        raise _configuration(
            f"{uri} is not an OpenAPI or Swagger document (no 'openapi' or 'swagger' field)"
        )
    _documents[uri] = parsed
    return parsed


def clear_description_cache() -> None:
    """Forget fetched descriptions, so the next call reads them again."""
    _documents.clear()


def find_operation(description: Mapping[str, Any], operation_id: str, uri: str) -> Operation:
    """The operation whose ``operationId`` is ``operation_id``, or a configuration fault."""
    known: list[str] = []
    for path, raw_item in (description.get("paths") or {}).items():
        item = _resolve(description, raw_item)
        for method in _METHODS:
            spec = item.get(method)
            if not isinstance(spec, Mapping):
                continue
            spec = _resolve(description, spec)
            if spec.get("operationId") == operation_id:
                return Operation(
                    path=str(path),
                    method=method,
                    spec=spec,
                    parameters=_parameters(description, item, spec),
                    servers=tuple(spec.get("servers") or item.get("servers") or ()),
                )
            if isinstance(spec.get("operationId"), str):
                known.append(spec["operationId"])
    close = difflib.get_close_matches(operation_id, known, n=3)
    if close:
        hint = f"did you mean {' or '.join(map(repr, close))}?"
    elif known:
        shown = ", ".join(sorted(known)[:8]) + (", ..." if len(known) > 8 else "")
        hint = f"its operations: {shown}"
    else:
        hint = "it names no operations"
    raise _configuration(
        f"the OpenAPI document at {uri} has no operation {operation_id!r} ({hint})"
    )


def build_request(
    description: Mapping[str, Any],
    operation: Operation,
    doc_uri: str,
    values: Mapping[str, Any],
) -> OutgoingRequest:
    """The HTTP request for ``operation`` with ``values`` placed per its parameters."""
    swagger2 = "swagger" in description
    path = operation.path
    query: dict[str, Any] = {}
    headers: dict[str, str] = {}
    cookies: list[str] = []
    form: dict[str, Any] = {}
    missing: list[str] = []
    body_name: str | None = None
    body_required = False
    for parameter in operation.parameters:
        name, where = str(parameter.get("name")), parameter.get("in")
        if where == "body":
            body_name, body_required = name, bool(parameter.get("required"))
            continue
        value = values.get(name)
        if value is None:
            if parameter.get("required") or where == "path":
                missing.append(f"{name!r} (in {where})")
            continue
        if where == "path":
            path = path.replace("{" + name + "}", urllib.parse.quote(_scalar(value), safe=""))
        elif where == "query":
            query.update(_query_value(name, value, parameter, swagger2))
        elif where == "header":
            headers[name] = _joined(value, ",")
        elif where == "cookie":
            cookies.append(f"{name}={urllib.parse.quote(_joined(value, ','), safe='')}")
        elif where == "formData":
            form[name] = value
    body: Any = None
    media_types: list[str] = []
    if swagger2:
        media_types = list(operation.spec.get("consumes") or description.get("consumes") or [])
    else:
        request_body = _resolve(description, operation.spec.get("requestBody") or {})
        if request_body:
            body_name = str(operation.spec.get("x-codegen-request-body-name") or "body")
            body_required = bool(request_body.get("required"))
            media_types = list(request_body.get("content") or {})
    if body_name is not None:
        body = values.get(body_name, values.get("body"))
        if body is None and body_required:
            missing.append(f"{body_name!r} (the request body)")
    if form:
        body = form
        media_types = ["application/x-www-form-urlencoded"]
    declared = {str(p.get("name")) for p in operation.parameters} | {body_name, "body"}
    ignored = sorted(set(values) - declared)
    if ignored:
        log.debug("operation %s ignores parameters %s", operation.spec.get("operationId"), ignored)
    if missing:
        raise BlueprintFault.standard(
            "validation",
            400,
            f"operation {operation.spec.get('operationId')!r} needs {', '.join(missing)}; "
            "give them under 'parameters'",
        )
    if body is not None:
        headers.setdefault("Content-Type", _pick_media_type(media_types))
    if cookies:
        headers["Cookie"] = "; ".join(cookies)
    base = base_url(description, operation, doc_uri)
    return OutgoingRequest(
        method=operation.method.upper(),
        uri=base.rstrip("/") + "/" + path.lstrip("/"),
        headers=headers,
        query=query,
        body=body,
    )


def base_url(description: Mapping[str, Any], operation: Operation, doc_uri: str) -> str:
    """Where the API lives: from ``servers`` (OpenAPI 3) or ``host``/``basePath`` (Swagger 2).

    A relative server URL, or a missing host, is taken relative to the description's own URI,
    as both formats define. Swagger 2 prefers the scheme the description was fetched with
    when the description lists it, since that one is known to reach the server.
    """
    if "swagger" in description:
        doc = urllib.parse.urlsplit(doc_uri)
        schemes = [str(s) for s in description.get("schemes") or []]
        scheme = doc.scheme if not schemes or doc.scheme in schemes else schemes[0]
        host = description.get("host") or doc.netloc
        return f"{scheme}://{host}{description.get('basePath') or '/'}"
    servers = operation.servers or tuple(description.get("servers") or ())
    url = "/"
    if servers and isinstance(servers[0], Mapping):
        server = servers[0]
        url = str(server.get("url") or "/")
        for name, variable in (server.get("variables") or {}).items():
            default = variable.get("default") if isinstance(variable, Mapping) else None
            url = url.replace("{" + str(name) + "}", str(default or ""))
    return urllib.parse.urljoin(doc_uri, url)


def _parameters(
    description: Mapping[str, Any], item: Mapping[str, Any], spec: Mapping[str, Any]
) -> tuple[Mapping[str, Any], ...]:
    """Path-level then operation-level parameters; the operation's win on (name, in)."""
    merged: dict[tuple[Any, Any], Mapping[str, Any]] = {}
    for raw in [*(item.get("parameters") or []), *(spec.get("parameters") or [])]:
        parameter = _resolve(description, raw)
        merged[(parameter.get("name"), parameter.get("in"))] = parameter
    return tuple(merged.values())


def _resolve(description: Mapping[str, Any], node: Any) -> Mapping[str, Any]:
    """``node`` with a local ``$ref`` (``#/components/...``) followed; a map in any case."""
    for _ in range(_MAX_REF_DEPTH):
        if not isinstance(node, Mapping):
            return {}
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        if not ref.startswith("#/"):
            raise _configuration(
                f"the $ref {ref!r} points outside the OpenAPI document; "
                "Legato follows only references within the document ('#/...')"
            )
        target: Any = description
        for token in ref[2:].split("/"):
            token = urllib.parse.unquote(token).replace("~1", "/").replace("~0", "~")
            target = target.get(token) if isinstance(target, Mapping) else None
        if target is None:
            raise _configuration(f"the $ref {ref!r} points to nothing in the OpenAPI document")
        node = target
    raise _configuration("the OpenAPI document's $refs loop")


def _query_value(
    name: str, value: Any, parameter: Mapping[str, Any], swagger2: bool
) -> dict[str, Any]:
    """A query parameter as name -> value(s), per collectionFormat (2) or style/explode (3)."""
    if isinstance(value, Mapping):
        if parameter.get("style") == "deepObject":
            return {f"{name}[{key}]": item for key, item in value.items()}
        if not swagger2 and parameter.get("explode", True):
            return {str(key): item for key, item in value.items()}
        return {name: json.dumps(value, separators=(",", ":"))}
    if not isinstance(value, list):
        return {name: value}
    if swagger2:
        collection = parameter.get("collectionFormat") or "csv"
        if collection == "multi":
            return {name: value}
        return {name: _joined(value, _SEPARATORS.get(str(collection), ","))}
    style = str(parameter.get("style") or "form")
    if style == "form" and parameter.get("explode", True):
        return {name: value}
    return {name: _joined(value, _STYLE_SEPARATORS.get(style, ","))}


def _joined(value: Any, separator: str) -> str:
    if isinstance(value, list):
        return separator.join(_scalar(item) for item in value)
    return _scalar(value)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, separators=(",", ":"))


def _pick_media_type(media_types: list[str]) -> str:
    for media in media_types:
        if media == "application/json" or media.endswith("+json"):
            return media
    return media_types[0] if media_types else "application/json"


def _configuration(detail: str) -> BlueprintFault:
    return BlueprintFault.standard("configuration", 400, detail)
