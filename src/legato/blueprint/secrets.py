"""``$secrets``: the secrets a blueprint declares under ``use.secrets``, from the environment.

A blueprint only sees the secrets it names, so a document cannot read whatever a worker
holds. A secret ``apiKey`` is read from ``LEGATO_SECRET_APIKEY`` (upper case; characters
other than letters and digits become ``_``); a value that parses as JSON is used as JSON
(so a secret can be an object with ``username`` and ``password``), else as a string. A
missing secret is absent from ``$secrets``. The values are never journalled by Legato
itself; expressions that copy them into task data do put them there, as the DSL warns.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

_NOT_WORD = re.compile(r"[^A-Za-z0-9]")


def env_name(secret: str) -> str:
    """The environment variable that holds ``secret``."""
    return "LEGATO_SECRET_" + _NOT_WORD.sub("_", secret).upper()


def load_secrets(names: Iterable[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in names:
        raw = os.environ.get(env_name(str(name)))
        if raw is None:
            continue
        try:
            found[str(name)] = json.loads(raw)
        except ValueError:
            found[str(name)] = raw
    return found
