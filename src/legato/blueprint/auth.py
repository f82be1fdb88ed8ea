"""Authentication policies of blueprints, turned into credentials on an HTTP request.

A policy is written inline (``basic: {username, password}``), by name (``use: petStoreAuth``
pointing into the document's ``use.authentications``), or with its settings kept in a secret
(``basic: {use: mySecret}``). This module resolves those indirections, then gives
:mod:`legato.blueprint.http` an ``httpx.Auth`` for the request.

OAuth2 and OpenID Connect tokens are requested from the authority's token endpoint (OpenID
Connect finds it by discovery) and kept in memory until shortly before they expire, so a
blueprint calling an API in a loop does not ask for a token each time. If the API turns a
cached token down (revoked early), a new token is fetched once and the request repeated.

Credentials are never put in error messages: :class:`Scrubber` removes them from any text
meant for people.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import hmac
import json
import re
import time
import urllib.parse
import uuid
from collections.abc import AsyncGenerator, Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from ..errors import BlueprintFault
from .expressions import interpolate

SCHEMES = ("basic", "bearer", "certificate", "digest", "oauth2", "oidc")
SUPPORTED_GRANTS = (
    "client_credentials",
    "password",
    "urn:ietf:params:oauth:grant-type:token-exchange",
)

_DEFAULT_TOKEN_PATH = "/oauth2/token"
_DISCOVERY_PATH = "/.well-known/openid-configuration"
_EXPIRY_MARGIN = 30.0  # seconds before expiry at which a cached token counts as expired
_NO_EXPIRY_LIFETIME = 300.0  # how long to keep a token whose answer gave no expires_in
_JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_SCHEME_TOKEN = re.compile(r"\b(Bearer|Basic|Digest)\s+[^\s,\"']+", re.IGNORECASE)

_tokens: dict[str, tuple[str, float]] = {}  # policy digest -> (access token, monotonic expiry)
_token_endpoints: dict[str, str] = {}  # OpenID Connect discovery URL -> its token endpoint


@dataclass(frozen=True)
class RequestAuth:
    """What a policy adds to a request: the ``httpx`` auth, and the values to keep secret."""

    auth: httpx.Auth | None
    sensitive: tuple[str, ...] = ()


def resolve_auth(
    policy: Any,
    *,
    authentications: Mapping[str, Any],
    secrets: Mapping[str, Any],
    client: httpx.AsyncClient,
    task_input: Any = None,
    variables: Mapping[str, Any] | None = None,
) -> RequestAuth:
    """The request credentials for ``policy`` (None: no authentication).

    ``policy`` is an inline policy, ``{"use": name}`` (or just the name) of one of
    ``authentications``, whose ``${ }`` expressions, if any are left, are evaluated against
    ``task_input`` with ``variables`` (default ``$secrets`` only). ``client`` requests OAuth2
    tokens. Raises :class:`BlueprintFault` (``configuration``) for a policy that cannot be used.
    """
    if policy is None:
        return RequestAuth(None)
    policy = _named_policy(policy, authentications, secrets, task_input, variables)
    scheme, config = _scheme_of(policy)
    config = _settings(scheme, config, secrets)
    if scheme == "basic":
        username, password = _fields(config, scheme, "username", "password")
        return RequestAuth(httpx.BasicAuth(username, password), (password,))
    if scheme == "digest":
        username, password = _fields(config, scheme, "username", "password")
        return RequestAuth(httpx.DigestAuth(username, password), (password,))
    if scheme == "bearer":
        (token,) = _fields(config, scheme, "token")
        return RequestAuth(_BearerAuth(token), (token,))
    if scheme in ("oauth2", "oidc"):
        source = _TokenSource.build(scheme, config)
        return RequestAuth(_TokenAuth(source, client), source.sensitive)
    raise _configuration(
        f"{scheme} authentication is not supported by Legato; "
        "use basic, bearer, digest, oauth2 or oidc"
    )


def clear_token_cache() -> None:
    """Forget cached OAuth2 tokens and discovered endpoints (tests, credential rotation)."""
    _tokens.clear()
    _token_endpoints.clear()


class Scrubber:
    """Replaces credentials in text meant for people: error details, echoed URIs."""

    def __init__(self, values: Iterable[str]) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._values = sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            text = text.replace(value, "***")
            quoted = urllib.parse.quote(value, safe="")
            if quoted != value:
                text = text.replace(quoted, "***")
        return _SCHEME_TOKEN.sub(lambda m: f"{m.group(1)} ***", text)


def secret_values(secrets: Mapping[str, Any], auth: RequestAuth | None = None) -> list[str]:
    """Every string held by the run's secrets and by a request's credentials."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(dict(secrets))
    if auth is not None:
        found.extend(auth.sensitive)
    return found


def _named_policy(
    policy: Any,
    authentications: Mapping[str, Any],
    secrets: Mapping[str, Any],
    task_input: Any,
    variables: Mapping[str, Any] | None,
) -> Mapping[str, Any]:
    name: Any = policy
    if isinstance(policy, Mapping):
        if "use" not in policy:
            return policy
        name = policy["use"]
    if not isinstance(name, str) or not name:
        raise _configuration(f"an authentication policy must be a map, not {policy!r}")
    named = authentications.get(name)
    if named is None:
        raise _configuration(
            f"no authentication policy named {name!r} in use.authentications"
            + _suggestion(name, authentications)
        )
    if not isinstance(named, Mapping) or "use" in named:
        raise _configuration(
            f"use.authentications.{name} must define a scheme (basic, bearer, ...); "
            "a named policy cannot 'use' another"
        )
    return dict(interpolate(named, task_input, variables or {"secrets": dict(secrets)}))


def _scheme_of(policy: Mapping[str, Any]) -> tuple[str, Any]:
    schemes = [key for key in policy if key in SCHEMES]
    if len(schemes) != 1:
        found = f"found {', '.join(map(repr, schemes))}" if schemes else "found none"
        raise _configuration(
            f"an authentication policy needs exactly one scheme of {', '.join(SCHEMES)} ({found})"
        )
    return schemes[0], policy[schemes[0]]


def _settings(scheme: str, config: Any, secrets: Mapping[str, Any]) -> Mapping[str, Any]:
    """The scheme's settings, read from a secret when written ``{use: secretName}``."""
    if not isinstance(config, Mapping):
        raise _configuration(f"{scheme} authentication must be a map of its settings")
    if set(config) != {"use"}:
        return config
    name = config["use"]
    value = secrets.get(name) if isinstance(name, str) else None
    if value is None:
        known = ", ".join(sorted(secrets)) or "none"
        raise _configuration(
            f"{scheme} authentication uses the secret {name!r}, which is not defined "
            f"(defined secrets: {known}); declare it under use.secrets and provide it"
        )
    if not isinstance(value, Mapping):
        raise _configuration(
            f"the secret {name!r} used by {scheme} authentication must be a map of its "
            "settings (username, password, ...)"
        )
    return value


def _fields(config: Mapping[str, Any], scheme: str, *names: str) -> tuple[str, ...]:
    values = []
    for name in names:
        value = config.get(name)
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise _configuration(f"{scheme} authentication needs {name!r} (a string)")
        values.append(str(value))
    return tuple(values)


class _BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class _TokenAuth(httpx.Auth):
    """Bearer authentication with a token from an OAuth2 authority, renewed when refused."""

    def __init__(self, source: _TokenSource, client: httpx.AsyncClient) -> None:
        self._source = source
        self._client = client

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2 authentication needs an httpx.AsyncClient")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token, fresh = await self._source.token(self._client, renew=False)
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and not fresh:
            token, _ = await self._source.token(self._client, renew=True)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


@dataclass(frozen=True)
class _TokenSource:
    """How to obtain an access token for one oauth2/oidc policy, and its cache key."""

    scheme: str
    config: Mapping[str, Any]
    key: str
    sensitive: tuple[str, ...]

    @classmethod
    def build(cls, scheme: str, config: Mapping[str, Any]) -> _TokenSource:
        if not isinstance(config.get("authority"), str) or not config["authority"]:
            raise _configuration(f"{scheme} authentication needs an 'authority' URI")
        grant = config.get("grant")
        if grant not in SUPPORTED_GRANTS:
            raise _configuration(
                f"{scheme} authentication: the grant {grant!r} is not supported by Legato "
                f"(it needs a user at a browser or a refresh token); use one of "
                f"{', '.join(SUPPORTED_GRANTS)}"
            )
        canonical = json.dumps([scheme, config], sort_keys=True, default=str)
        return cls(
            scheme=scheme,
            config=config,
            key=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
            sensitive=tuple(_credentials(config)),
        )

    async def token(self, client: httpx.AsyncClient, *, renew: bool) -> tuple[str, bool]:
        """A valid access token and whether it was just fetched (rather than cached)."""
        cached = _tokens.get(self.key)
        if cached is not None and not renew and cached[1] > time.monotonic():
            return cached[0], False
        access_token, lifetime = await self._request_token(client)
        _tokens[self.key] = (access_token, time.monotonic() + lifetime)
        return access_token, True

    async def _request_token(self, client: httpx.AsyncClient) -> tuple[str, float]:
        endpoint = await self._token_endpoint(client)
        fields, headers = self._token_request(endpoint)
        scrub = Scrubber(self.sensitive)
        encoding = (self.config.get("request") or {}).get("encoding")
        try:
            if encoding == "application/json":
                response = await client.post(endpoint, json=fields, headers=headers)
            else:
                response = await client.post(endpoint, data=fields, headers=headers)
        except httpx.RequestError as exc:
            raise _unreachable("the token endpoint", endpoint, exc, scrub) from exc
        answer = _json_or_none(response)
        if not response.is_success or not isinstance(answer, Mapping):
            reason = ""
            if isinstance(answer, Mapping) and answer.get("error"):
                reason = f": {answer.get('error')} {answer.get('error_description') or ''}"
            raise _authentication(
                scrub(
                    f"the token endpoint {endpoint} refused the {self.config['grant']} grant "
                    f"(HTTP {response.status_code}{reason.rstrip()})"
                )
            )
        access_token = answer.get("access_token")
        if not isinstance(access_token, str) or not access_token:
            raise _authentication(f"the token endpoint {endpoint} answered without access_token")
        self._check_issuer(access_token)
        expires_in = answer.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            lifetime = max(float(expires_in) - _EXPIRY_MARGIN, float(expires_in) / 2)
        else:
            lifetime = _NO_EXPIRY_LIFETIME
        return access_token, lifetime

    async def _token_endpoint(self, client: httpx.AsyncClient) -> str:
        authority = str(self.config["authority"]).rstrip("/")
        if self.scheme == "oauth2":
            path = (self.config.get("endpoints") or {}).get("token") or _DEFAULT_TOKEN_PATH
            if urllib.parse.urlsplit(path).scheme:
                return str(path)
            return f"{authority}/{str(path).lstrip('/')}"
        discovery = (
            authority if authority.endswith(_DISCOVERY_PATH) else authority + _DISCOVERY_PATH
        )
        if discovery in _token_endpoints:
            return _token_endpoints[discovery]
        try:
            response = await client.get(discovery)
        except httpx.RequestError as exc:
            raise _unreachable("OpenID Connect discovery", discovery, exc, Scrubber(())) from exc
        answer = _json_or_none(response)
        endpoint = answer.get("token_endpoint") if isinstance(answer, Mapping) else None
        if not response.is_success or not isinstance(endpoint, str):
            raise BlueprintFault.standard(
                "communication",
                response.status_code if not response.is_success else 502,
                f"OpenID Connect discovery at {discovery} gave no token_endpoint "
                f"(HTTP {response.status_code})",
                "OpenID Connect discovery failed",
            )
        _token_endpoints[discovery] = endpoint
        return endpoint

    def _token_request(self, endpoint: str) -> tuple[dict[str, Any], dict[str, str]]:
        """The token request's fields and headers, for the grant and client authentication."""
        config = self.config
        grant = str(config["grant"])
        fields: dict[str, Any] = {"grant_type": grant}
        if grant == "password":
            username, password = _fields(config, self.scheme, "username", "password")
            fields.update(username=username, password=password)
        elif grant.endswith("token-exchange"):
            for role in ("subject", "actor"):
                token = config.get(role)
                if isinstance(token, Mapping):
                    fields[f"{role}_token"] = token.get("token")
                    fields[f"{role}_token_type"] = token.get("type")
                elif role == "subject":
                    raise _configuration(
                        f"{self.scheme} token exchange needs 'subject' with 'token' and 'type'"
                    )
        if config.get("scopes"):
            fields["scope"] = " ".join(map(str, config["scopes"]))
        if config.get("audiences"):
            fields["audience"] = [str(a) for a in config["audiences"]]
        headers = self._client_authentication(fields, endpoint)
        return fields, headers

    def _client_authentication(self, fields: dict[str, Any], endpoint: str) -> dict[str, str]:
        client = self.config.get("client") or {}
        method = client.get("authentication") or "client_secret_post"
        client_id = client.get("id")
        secret = client.get("secret")
        if method != "none" and not client_id:
            raise _configuration(
                f"{self.scheme} authentication needs client.id for {method} client authentication"
            )
        if method == "none":
            if client_id:
                fields["client_id"] = client_id
            return {}
        if method == "client_secret_basic":
            pair = f"{_form_quote(client_id)}:{_form_quote(secret or '')}"
            return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}
        if method == "client_secret_post":
            fields["client_id"] = client_id
            if secret:
                fields["client_secret"] = secret
            return {}
        if method in ("private_key_jwt", "client_secret_jwt"):
            assertion = client.get("assertion")
            if not assertion and method == "client_secret_jwt" and secret:
                assertion = _client_secret_jwt(str(client_id), str(secret), endpoint)
            if not assertion:
                raise _configuration(
                    f"{self.scheme} authentication needs client.assertion for {method}"
                )
            fields.update(
                client_id=client_id, client_assertion_type=_JWT_BEARER, client_assertion=assertion
            )
            return {}
        raise _configuration(
            f"{self.scheme} authentication: unknown client.authentication {method!r} "
            "(client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt, none)"
        )

    def _check_issuer(self, access_token: str) -> None:
        """Check a JWT token's ``iss`` against ``issuers``; opaque tokens cannot be checked."""
        issuers = self.config.get("issuers")
        parts = access_token.split(".")
        if not issuers or len(parts) != 3:
            return
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except ValueError:
            return
        issuer = claims.get("iss") if isinstance(claims, dict) else None
        if issuer not in issuers:
            raise _authentication(
                f"the token's issuer {issuer!r} is not one of the policy's issuers "
                f"({', '.join(map(str, issuers))})"
            )


def _client_secret_jwt(client_id: str, secret: str, audience: str) -> str:
    """A short-lived HS256 client assertion signed with the client secret (RFC 7523)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    now = int(time.time())
    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 300,
    }
    body = part(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{part(signature)}"


def _credentials(config: Mapping[str, Any]) -> list[str]:
    client = config.get("client") or {}
    values = [client.get("secret"), client.get("assertion"), config.get("password")]
    for role in ("subject", "actor"):
        token = config.get(role)
        if isinstance(token, Mapping):
            values.append(token.get("token"))
    return [str(v) for v in values if v]


def _form_quote(value: Any) -> str:
    return urllib.parse.quote_plus(str(value))


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _suggestion(name: str, names: Iterable[str]) -> str:
    known = sorted(names)
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (defined: {', '.join(known)})" if known else " (none is defined)"


def _unreachable(what: str, url: str, exc: httpx.RequestError, scrub: Scrubber) -> BlueprintFault:
    if isinstance(exc, httpx.TimeoutException):
        return BlueprintFault.standard(
            "timeout", 408, f"{what} {url} timed out", "HTTP request timed out"
        )
    return BlueprintFault.standard(
        "communication", 503, scrub(f"{what} {url} failed: {exc}"), "Service unreachable"
    )


def _authentication(detail: str) -> BlueprintFault:
    return BlueprintFault.standard("authentication", 401, detail, "Authentication failed")


def _configuration(detail: str) -> BlueprintFault:
    return BlueprintFault.standard("configuration", 400, detail)
