"""``$secrets``: the secrets a blueprint declares under ``use.secrets``, from the environment.

A blueprint only sees the secrets it names, and only those granted to its namespace, so
a document cannot read whatever a worker holds by naming it. For a blueprint in
namespace ``billing`` that declares ``apiKey``:

* ``LEGATO_SECRET_BILLING__APIKEY`` is the namespace's own secret: always readable there;
* ``LEGATO_SECRET_APIKEY`` is a shared secret: readable only by the namespaces listed in
  ``LEGATO_SECRET_APIKEY_NAMESPACES`` (comma-separated; ``*`` for every namespace).

Names are upper-cased, with characters other than letters and digits as ``_``. A value
that parses as JSON is used as JSON (so a secret can be an object with ``username`` and
``password``), else as a string. A secret that is not set at all is absent from
``$secrets``; one that is set but not granted stops the run with a configuration error
(and fails validation where it is set). Legato never journals the values; expressions that
copy them into task data do put them there, as the DSL warns.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import BlueprintFault

_NOT_WORD = re.compile(r"[^A-Za-z0-9]")


def _word(text: str) -> str:
    return _NOT_WORD.sub("_", text).upper()


def env_name(secret: str) -> str:
    """The environment variable that holds the shared secret ``secret``."""
    return "LEGATO_SECRET_" + _word(secret)


def own_env_name(namespace: str, secret: str) -> str:
    """The environment variable that holds ``namespace``'s own secret ``secret``."""
    return f"LEGATO_SECRET_{_word(namespace)}__{_word(secret)}"


def grant_env_name(secret: str) -> str:
    """The environment variable that lists the namespaces a shared secret is granted to."""
    return env_name(secret) + "_NAMESPACES"


def refusal(name: str, namespace: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why ``namespace`` may not read the secret ``name`` set here, or None if it may (or
    if the secret is not set in this environment at all). A name whose variable would hold
    ``__`` is refused wherever it is (it could name another namespace's own secret)."""
    env = os.environ if environ is None else environ
    if "__" in _word(name):
        # "__" separates the namespace from the name: namespace "team" naming
        # "payments__token" would read LEGATO_SECRET_TEAM__PAYMENTS__TOKEN, the own
        # secret "token" of namespace "team--payments".
        return (
            f"secret name {name!r} cannot be used: two characters other than letters and "
            f"digits in a row make '__' in {env_name(name)}, the separator of a namespace "
            "and its own secret's name; rename the secret"
        )
    if own_env_name(namespace, name) in env or env_name(name) not in env:
        return None
    granted = {n.strip() for n in env.get(grant_env_name(name), "").split(",") if n.strip()}
    if "*" in granted or namespace in granted:
        return None
    return (
        f"secret {name!r} is not granted to namespace {namespace!r}: add {namespace} to "
        f"{grant_env_name(name)}, or set the namespace's own {own_env_name(namespace, name)}"
    )


def load_secrets(names: Iterable[str], namespace: str) -> dict[str, Any]:
    """The values of the secrets ``names`` for a blueprint of ``namespace``.

    Raises a ``configuration`` :class:`BlueprintFault` for a secret that is set but not
    granted to ``namespace``.
    """
    found: dict[str, Any] = {}
    for secret in (str(n) for n in names):
        refused = refusal(secret, namespace)
        if refused is not None:
            raise BlueprintFault.standard("configuration", 403, refused, "Secret not granted")
        raw = os.environ.get(own_env_name(namespace, secret))
        if raw is None:
            raw = os.environ.get(env_name(secret))
        if raw is None:
            continue
        try:
            found[secret] = json.loads(raw)
        except ValueError:
            found[secret] = raw
    return found
