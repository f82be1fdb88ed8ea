"""HTTP calls of blueprints (``call: http``), and the request machinery OpenAPI calls share.

A blueprint's HTTP task is one durable step: this module only performs the request and turns
the answer into the task's output, or into a :class:`~legato.errors.BlueprintFault` a ``try``
can catch. The caller has already evaluated the ``${ }`` expressions of the call's ``with``
map; what is left here is the DSL's own small syntax (``{name}`` URI templates), the three
output shapes (``content``, ``response``, ``raw``) and the mapping of HTTP statuses and
network failures onto the DSL's standard error types.

Credentials never reach error text or the ``response`` output: the values of the run's
secrets and of the authentication policy are scrubbed, and credential headers are redacted.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import httpx

from ..errors import BlueprintFault
from .auth import Scrubber, resolve_auth, secret_values

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""Used when the caller passes no client: generous, since a task's own ``timeout`` bounds it."""

OUTPUTS = ("content", "response", "raw")

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_EXCERPT = 200


@dataclass(frozen=True)
class OutgoingRequest:
    """One HTTP request as a blueprint describes it, before authentication is applied.

    ``body`` is a JSON value: a string is sent as text, anything else as JSON (or as a form
    when ``headers`` say ``application/x-www-form-urlencoded``).
    """

    method: str
    uri: str
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None


async def perform_http(
    args: Mapping[str, Any],
    *,
    task_input: Any,
    authentications: Mapping[str, Any],
    secrets: Mapping[str, Any],
    client: httpx.AsyncClient | None = None,
    variables: Mapping[str, Any] | None = None,
) -> Any:
    """Run a ``call: http`` task whose ``with`` map (``args``) is already evaluated.

    ``task_input`` fills the ``{name}`` placeholders of the endpoint's URI; ``authentications``
    are the document's named policies (``use.authentications``) and ``secrets`` the run's
    secrets, for ``use:`` references. ``variables`` are the runtime arguments used if a named
    policy still holds ``${ }`` expressions (default: only ``$secrets``). Returns the task's
    output in the shape ``args["output"]`` asks for; raises :class:`BlueprintFault`.
    """
    method = args.get("method")
    if not isinstance(method, str) or not method.strip():
        raise _configuration("an HTTP call needs a 'method' (get, post, ...)")
    uri, authentication = endpoint_parts(args.get("endpoint"), what="an HTTP call")
    request = OutgoingRequest(
        method=method,
        uri=expand_uri_template(uri, task_input),
        headers=_string_map(args.get("headers"), "headers"),
        query=_mapping(args.get("query"), "query"),
        body=args.get("body"),
    )
    return await send(
        request,
        authentication=authentication,
        output=output_mode(args.get("output")),
        redirect=redirect_flag(args.get("redirect")),
        task_input=task_input,
        authentications=authentications,
        secrets=secrets,
        variables=variables,
        client=client,
    )


def endpoint_parts(endpoint: Any, *, what: str) -> tuple[str, Any]:
    """The URI and authentication policy (or None) of an ``endpoint``: a string or a map."""
    if isinstance(endpoint, str) and endpoint.strip():
        return endpoint.strip(), None
    if isinstance(endpoint, Mapping):
        uri = endpoint.get("uri")
        if isinstance(uri, str) and uri.strip():
            return uri.strip(), endpoint.get("authentication")
    raise _configuration(
        f"{what} needs an 'endpoint': a URI, or a map with 'uri' (and 'authentication')"
    )


def output_mode(value: Any) -> str:
    """The ``output`` option, checked: ``content`` (the default), ``response`` or ``raw``."""
    if value is None:
        return "content"
    if value not in OUTPUTS:
        raise _configuration(f"output must be one of {', '.join(OUTPUTS)}, not {value!r}")
    return str(value)


def redirect_flag(value: Any) -> bool:
    """The ``redirect`` option, checked: a boolean, false by default."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _configuration(f"redirect must be true or false, not {value!r}")
    return value


def expand_uri_template(uri: str, task_input: Any) -> str:
    """``uri`` with each ``{name}`` replaced by the task input's top-level ``name``, URL-quoted.

    Only the simple expansion of URI templates exists in the DSL, so a name is taken verbatim
    (``{pet.id}`` reads the key ``"pet.id"``). A placeholder without a value is an error rather
    than an empty string: a silently shortened URI would call the wrong resource.
    """
    data = task_input if isinstance(task_input, Mapping) else {}

    def value_of(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in data or data[name] is None:
            raise _configuration(
                f"the URI template {uri!r} needs {name!r}, which the task input does not have; "
                f"add {name!r} to the task's input (or write the URI as a ${{ }} expression)"
            )
        value = data[name]
        if isinstance(value, Mapping | list):
            raise BlueprintFault.expression(
                f"the URI template {uri!r} can only use a string, number or boolean for "
                f"{name!r}, not {type(value).__name__}"
            )
        return urllib.parse.quote(_text(value), safe="")

    return _PLACEHOLDER.sub(value_of, uri)


async def send(
    request: OutgoingRequest,
    *,
    authentication: Any,
    output: str,
    redirect: bool,
    task_input: Any,
    authentications: Mapping[str, Any],
    secrets: Mapping[str, Any],
    variables: Mapping[str, Any] | None,
    client: httpx.AsyncClient | None,
) -> Any:
    """Send ``request`` with its authentication and return the task output it produces.

    HTTP and OpenAPI calls both end here, so they share authentication, status checks,
    error types and output shapes.
    """
    if client is None:
        async with httpx.AsyncClient(timeout=DEFAULT_TIMEOUT) as own_client:
            return await send(
                request,
                authentication=authentication,
                output=output,
                redirect=redirect,
                task_input=task_input,
                authentications=authentications,
                secrets=secrets,
                variables=variables,
                client=own_client,
            )
    auth = resolve_auth(
        authentication,
        authentications=authentications,
        secrets=secrets,
        task_input=task_input,
        variables=variables,
        client=client,
    )
    scrub = Scrubber(secret_values(secrets, auth))
    method = request.method.strip().upper()
    try:
        url = httpx.URL(request.uri)
        if request.query:
            url = url.copy_merge_params(_query_items(request.query))
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise _configuration(f"{request.uri!r} is not a valid URI: {exc}") from exc
    headers, content = _encode_body(request.headers, request.body)
    shown = scrub(f"{method} {_safe_url(url)}")
    try:
        response = await client.request(
            method,
            url,
            headers=headers,
            content=content,
            auth=auth.auth,
            follow_redirects=redirect,
        )
    except httpx.TimeoutException as exc:
        raise BlueprintFault.standard(
            "timeout", 408, f"{shown} timed out ({type(exc).__name__})", "HTTP request timed out"
        ) from exc
    except httpx.UnsupportedProtocol as exc:
        raise _configuration(f"{shown}: {scrub(str(exc))}") from exc
    except httpx.RequestError as exc:
        reason = scrub(str(exc)) or type(exc).__name__
        raise BlueprintFault.standard(
            "communication", 503, f"{shown} failed: {reason}", "Service unreachable"
        ) from exc
    log.debug("%s answered %s", shown, response.status_code)
    highest = 399 if redirect else 299
    if not 200 <= response.status_code <= highest:
        raise status_fault(response, shown, scrub)
    return shape_output(response, output, scrub)


def status_fault(response: httpx.Response, shown: str, scrub: Scrubber) -> BlueprintFault:
    """The communication error for a response whose status the call does not accept."""
    status = response.status_code
    title = f"HTTP {status} {_reason(response)}".rstrip()
    excerpt = " ".join(response.text.split())[:_EXCERPT] if response.content else ""
    detail = f"{shown} answered {status}" + (f": {excerpt}" if excerpt else "")
    return BlueprintFault(
        {
            "type": "https://serverlessworkflow.io/spec/1.0.0/errors/communication",
            "status": status,
            "title": title,
            "detail": scrub(detail),
        }
    )


def shape_output(response: httpx.Response, output: str, scrub: Scrubber) -> Any:
    """The task output: the decoded content, the whole response, or base64 of the body."""
    if output == "raw":
        return base64.b64encode(response.content).decode("ascii") if response.content else None
    content = decode_content(response)
    if output == "content":
        return content
    request = response.request
    return {
        "request": {
            "method": request.method,
            "uri": scrub(_safe_url(request.url)),
            "headers": _header_map(request.headers.raw),
        },
        "statusCode": response.status_code,
        "headers": _header_map(response.headers.raw),
        "content": content,
    }


def decode_content(response: httpx.Response) -> Any:
    """The body as data: JSON parsed, text as a string, other bytes base64; empty is None."""
    if not response.content:
        return None
    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        try:
            return response.json()
        except ValueError as exc:
            raise BlueprintFault.standard(
                "communication",
                502,
                f"{response.request.method} {_safe_url(response.request.url)} answered "
                f"{media} that is not valid JSON: {exc}",
                "Invalid response",
            ) from exc
    if _is_textual(media):
        try:
            return response.content.decode(response.encoding or "utf-8")
        except (LookupError, UnicodeDecodeError):
            pass
    return base64.b64encode(response.content).decode("ascii")


def _encode_body(headers: Mapping[str, str], body: Any) -> tuple[dict[str, str], bytes | None]:
    sent = dict(headers)
    if body is None:
        return sent, None
    content_type = next((v for k, v in sent.items() if k.lower() == "content-type"), None)
    if isinstance(body, str):
        if content_type is None:
            sent["Content-Type"] = "text/plain; charset=utf-8"
        return sent, body.encode("utf-8")
    if isinstance(body, Mapping) and content_type and "x-www-form-urlencoded" in content_type:
        pairs = [(k, v) for k, values in _query_items(body).items() for v in values]
        return sent, urllib.parse.urlencode(pairs).encode("ascii")
    if content_type is None:
        sent["Content-Type"] = "application/json"
    return sent, json.dumps(body, separators=(",", ":")).encode("utf-8")


def _query_items(query: Mapping[str, Any]) -> dict[str, list[str]]:
    """Query values as strings: lists repeat the name, null leaves it out."""
    items: dict[str, list[str]] = {}
    for name, value in query.items():
        values = value if isinstance(value, list) else [value]
        texts = [_text(v) for v in values if v is not None]
        if texts:
            items[str(name)] = texts
    return items


def _text(value: Any) -> str:
    """A JSON scalar as it reads in a URI or header (``true``, not ``True``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


def _string_map(value: Any, name: str) -> dict[str, str]:
    return {key: _text(item) for key, item in _mapping(value, name).items() if item is not None}


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _configuration(f"{name} must be a map of names to values, not {value!r}")
    return {str(key): item for key, item in value.items()}


def _header_map(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """Headers keeping their spelling; repeated names joined; credentials redacted."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in raw:
        name = raw_name.decode("latin-1")
        value = raw_value.decode("latin-1")
        if name.lower() in _CREDENTIAL_HEADERS:
            value = "<redacted>"
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def _safe_url(url: httpx.URL) -> str:
    """The URL without its user-info part, which may hold a password."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


def _reason(response: httpx.Response) -> str:
    try:
        return HTTPStatus(response.status_code).phrase
    except ValueError:
        return response.reason_phrase


def _is_textual(media: str) -> bool:
    if not media or media.startswith("text/"):
        return True
    textual = ("xml", "yaml", "javascript", "x-www-form-urlencoded", "graphql", "csv")
    return any(word in media for word in textual)


def _configuration(detail: str) -> BlueprintFault:
    return BlueprintFault.standard("configuration", 400, detail)
