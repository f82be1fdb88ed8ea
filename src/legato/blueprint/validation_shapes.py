"""Validation of the shapes a document reuses everywhere: data stages, endpoints, events.

Authentication policies, error definitions, retry policies, event filters and the
input/output/export stages appear at the top level, under ``use`` and inside tasks alike,
so they are checked by one :class:`ShapeChecker` that the task and document checkers
build on. Each check reports through :class:`~.validation_core.Checker`, so a problem
inside a shape is reported at its own line, with its full path.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from .source import Path
from .validation_core import Checker, Scope, type_name

_GRANTS = (
    "authorization_code",
    "client_credentials",
    "password",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:token-exchange",
)
_CLIENT_AUTHENTICATIONS = (
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "none",
)
_ENCODINGS = ("application/x-www-form-urlencoded", "application/json")
_OAUTH2_FIELDS = (
    "authority",
    "grant",
    "client",
    "request",
    "issuers",
    "scopes",
    "audiences",
    "username",
    "password",
    "subject",
    "actor",
)
_SCHEMES = ("basic", "bearer", "digest", "oauth2", "oidc")
_EVENT_STRINGS = ("id", "source", "type", "time", "subject", "datacontenttype", "dataschema")


class ShapeChecker(Checker):
    """Checks the DSL's shared shapes."""

    # -- data: input, output, export, schema ----------------------------------------------
    def data_stage(self, value: Any, path: Path, key: str, scope: Scope) -> None:
        """``input`` (``key`` = from), ``output`` or ``export`` (``key`` = as)."""
        stage = self.mapping(value, path)
        if stage is None:
            return
        self.fields(stage, path, ("schema", key))
        if "schema" in stage:
            self.schema(stage["schema"], (*path, "schema"), scope)
        if key in stage:
            self.value_or_expression(stage[key], (*path, key), scope)

    def schema(self, value: Any, path: Path, scope: Scope) -> None:
        schema = self.mapping(value, path)
        if schema is None:
            return
        self.fields(schema, path, ("format", "document", "resource"))
        source = self.one_of(schema, path, ("document", "resource"))
        fmt = schema.get("format", "json")
        if self.string(fmt, (*path, "format")) is not None and fmt.split(":")[0] != "json":
            self.unsupported((*path, "format"), "schema format other than json")
        if source == "document" and not isinstance(schema["document"], dict | bool):
            self.report(
                (*path, "document"),
                f"expected a JSON Schema (a mapping), got {type_name(schema['document'])}",
            )
        elif source == "resource":
            self.resource(schema["resource"], (*path, "resource"), scope)

    def resource(self, value: Any, path: Path, scope: Scope) -> None:
        resource = self.mapping(value, path)
        if resource is None:
            return
        self.fields(resource, path, ("name", "endpoint"), ("endpoint",))
        if "name" in resource:
            self.string(resource["name"], (*path, "name"))
        if "endpoint" in resource:
            self.endpoint(resource["endpoint"], (*path, "endpoint"), scope)

    # -- endpoints and authentication -----------------------------------------------------
    def endpoint(self, value: Any, path: Path, scope: Scope) -> None:
        if isinstance(value, str):
            self.uri(value, path, scope)
            return
        endpoint = self.mapping(value, path)
        if endpoint is None:
            return
        self.fields(endpoint, path, ("uri", "authentication"), ("uri",))
        if "uri" in endpoint:
            self.uri(endpoint["uri"], (*path, "uri"), scope)
        if "authentication" in endpoint:
            self.authentication(endpoint["authentication"], (*path, "authentication"), scope)

    def authentication(self, value: Any, path: Path, scope: Scope, *, named: bool = False) -> None:
        """An authentication policy; ``{use: name}`` refers to one under use.authentications.

        ``named``: the policy is itself one of use.authentications (it cannot refer on).
        """
        policy = self.mapping(value, path)
        if policy is None:
            return
        if "use" in policy and named:
            self.report(
                (*path, "use"),
                "a policy under use.authentications gives its own credentials; 'use' (naming "
                "one of these policies) belongs in an endpoint's authentication",
                at_key=True,
            )
            return
        if "use" in policy:
            self.fields(policy, path, ("use",))
            self.reference(policy["use"], (*path, "use"), "authentications")
            return
        self.fields(policy, path, _SCHEMES if named else ("use", *_SCHEMES))
        scheme = self.one_of(policy, path, _SCHEMES)
        if scheme is None:
            return
        where = (*path, scheme)
        settings = self.mapping(policy[scheme], where)
        if settings is None:
            return
        if "use" in settings:  # the credentials come from a secret
            self.fields(settings, where, ("use",))
            self.reference(settings["use"], (*where, "use"), "secrets")
        elif scheme in ("basic", "digest"):
            self.fields(settings, where, ("username", "password"), ("username", "password"))
            for key in ("username", "password"):
                if key in settings:
                    self.string(settings[key], (*where, key), scope)
        elif scheme == "bearer":
            self.fields(settings, where, ("token",), ("token",))
            if "token" in settings:
                self.string(settings["token"], (*where, "token"), scope)
        else:
            self.oauth2(settings, where, scope, endpoints=scheme == "oauth2")

    def oauth2(
        self, settings: dict[str, Any], path: Path, scope: Scope, *, endpoints: bool
    ) -> None:
        allowed = (*_OAUTH2_FIELDS, "endpoints") if endpoints else _OAUTH2_FIELDS
        self.fields(settings, path, allowed, ("authority", "grant"))
        if "authority" in settings:
            self.uri(settings["authority"], (*path, "authority"), scope)
        if "grant" in settings:
            self.choice(settings["grant"], (*path, "grant"), _GRANTS)
        for key in ("username", "password"):
            if key in settings:
                self.string(settings[key], (*path, key), scope)
        for key in ("issuers", "scopes", "audiences"):
            if key in settings:
                self.strings(settings[key], (*path, key), scope)
        client = settings.get("client")
        if client is not None and self.mapping(client, (*path, "client")) is not None:
            where = (*path, "client")
            self.fields(client, where, ("id", "secret", "assertion", "authentication"))
            for key in ("id", "secret", "assertion"):
                if key in client:
                    self.string(client[key], (*where, key), scope)
            if "authentication" in client:
                self.choice(
                    client["authentication"], (*where, "authentication"), _CLIENT_AUTHENTICATIONS
                )
        request = settings.get("request")
        if request is not None and self.mapping(request, (*path, "request")) is not None:
            self.fields(request, (*path, "request"), ("encoding",))
            if "encoding" in request:
                self.choice(request["encoding"], (*path, "request", "encoding"), _ENCODINGS)
        for key in ("subject", "actor"):
            token = settings.get(key)
            if token is not None and self.mapping(token, (*path, key)) is not None:
                self.fields(token, (*path, key), ("token", "type"), ("token", "type"))
                for part in ("token", "type"):
                    if part in token:
                        self.string(token[part], (*path, key, part), scope)
        found = settings.get("endpoints")
        if found is not None and self.mapping(found, (*path, "endpoints")) is not None:
            names = ("token", "revocation", "introspection")
            self.fields(found, (*path, "endpoints"), names)
            for key in names:
                if key in found:
                    self.string(found[key], (*path, "endpoints", key), scope)

    # -- errors, retries ------------------------------------------------------------------
    def error(self, value: Any, path: Path, scope: Scope) -> None:
        """An error definition (RFC 7807 problem): ``type`` and ``status`` are required."""
        error = self.mapping(value, path)
        if error is None:
            return
        self.fields(
            error, path, ("type", "status", "instance", "title", "detail"), ("type", "status")
        )
        if "type" in error:
            self.uri(error["type"], (*path, "type"), scope)
        status = error.get("status")
        if status is not None and not self.maybe_expression(status, (*path, "status"), scope):
            self.integer(status, (*path, "status"), minimum=0)
        for key in ("instance", "title", "detail"):
            if key in error:
                self.string(error[key], (*path, key), scope)

    def error_filter(self, value: Any, path: Path) -> None:
        found = self.mapping(value, path)
        if found is None:
            return
        keys = ("type", "status", "instance", "title", "detail", "details")
        self.fields(found, path, keys)
        if not found:
            self.report(path, "an empty error filter: give a type, a status, ...")
        for key in keys:
            if key in found:
                if key == "status":
                    self.integer(found[key], (*path, key))
                else:
                    self.string(found[key], (*path, key))

    def retry(self, value: Any, path: Path, scope: Scope) -> None:
        """A retry policy, or the name of one under use.retries."""
        if isinstance(value, str):
            self.reference(value, path, "retries")
            return
        policy = self.mapping(value, path)
        if policy is None:
            return
        allowed = ("when", "exceptWhen", "delay", "backoff", "limit", "jitter")
        self.fields(policy, path, allowed)
        for key in ("when", "exceptWhen"):
            if key in policy:
                self.expression(policy[key], (*path, key), scope)
        if "delay" in policy:
            self.duration(policy["delay"], (*path, "delay"), scope)
        backoff = policy.get("backoff")
        if backoff is not None and self.mapping(backoff, (*path, "backoff")) is not None:
            where = (*path, "backoff")
            kinds = ("constant", "exponential", "linear")
            self.fields(backoff, where, kinds)
            kind = self.one_of(backoff, where, kinds)
            if kind is not None and backoff[kind] is not None:
                self.mapping(backoff[kind], (*where, kind))
        limit = policy.get("limit")
        if limit is not None and self.mapping(limit, (*path, "limit")) is not None:
            where = (*path, "limit")
            self.fields(limit, where, ("attempt", "duration"))
            if "duration" in limit:
                self.duration(limit["duration"], (*where, "duration"), scope)
            attempt = limit.get("attempt")
            if attempt is not None and self.mapping(attempt, (*where, "attempt")) is not None:
                self.fields(attempt, (*where, "attempt"), ("count", "duration"))
                if "count" in attempt:
                    self.integer(attempt["count"], (*where, "attempt", "count"), minimum=0)
                if "duration" in attempt:
                    self.duration(attempt["duration"], (*where, "attempt", "duration"), scope)
        jitter = policy.get("jitter")
        if jitter is not None and self.mapping(jitter, (*path, "jitter")) is not None:
            self.fields(jitter, (*path, "jitter"), ("from", "to"), ("from", "to"))
            for key in ("from", "to"):
                if key in jitter:
                    self.duration(jitter[key], (*path, "jitter", key), scope)

    # -- events ---------------------------------------------------------------------------
    def event_properties(
        self, value: Any, path: Path, scope: Scope, required: Collection[str] = ()
    ) -> None:
        """CloudEvents attributes (``with`` of an emit or a filter); extensions allowed."""
        attributes = self.mapping(value, path)
        if attributes is None:
            return
        for key in required:
            if key not in attributes:
                self.report(path, f"missing required field '{key}'", at_key=True)
        if not attributes and not required:
            self.report(path, "an empty event filter: give at least a type or a source")
        for key, item in attributes.items():
            if key in _EVENT_STRINGS:
                self.string(item, (*path, key), scope)
            else:
                self.scan(item, (*path, key), scope)

    def event_filter(self, value: Any, path: Path, scope: Scope) -> None:
        found = self.mapping(value, path)
        if found is None:
            return
        self.fields(found, path, ("with", "correlate"), ("with",))
        if "with" in found:
            self.event_properties(found["with"], (*path, "with"), scope)
        correlate = found.get("correlate")
        if correlate is None or self.mapping(correlate, (*path, "correlate")) is None:
            return
        for name, correlation in correlate.items():
            where = (*path, "correlate", name)
            if self.mapping(correlation, where) is None:
                continue
            self.fields(correlation, where, ("from", "expect"), ("from",))
            if "from" in correlation:
                self.expression(correlation["from"], (*where, "from"), scope)
            if "expect" in correlation:  # a constant, or a ${ } expression
                self.scan(correlation["expect"], (*where, "expect"), scope)

    def consumption(self, value: Any, path: Path, scope: Scope, *, nested: bool = False) -> None:
        """An event consumption strategy: ``all``, ``any`` (maybe ``until``) or ``one``."""
        strategy = self.mapping(value, path)
        if strategy is None:
            return
        self.fields(
            strategy, path, ("all", "any", "one") if nested else ("all", "any", "one", "until")
        )
        kind = self.one_of(strategy, path, ("all", "any", "one"))
        if kind == "one":
            self.event_filter(strategy["one"], (*path, "one"), scope)
        elif kind is not None:
            filters = strategy[kind]
            if not isinstance(filters, list):
                self.report(
                    (*path, kind), f"expected a list of event filters, got {type_name(filters)}"
                )
            else:
                if kind == "all" and not filters:
                    self.report((*path, kind), "expected at least one event filter")
                for i, item in enumerate(filters):
                    self.event_filter(item, (*path, kind, i), scope)
        if "until" in strategy and not nested:
            until = strategy["until"]
            if kind != "any":
                self.report((*path, "until"), "'until' applies only to 'any'", at_key=True)
            if isinstance(until, str):
                self.expression(until, (*path, "until"), scope)
            else:
                self.consumption(until, (*path, "until"), scope, nested=True)
