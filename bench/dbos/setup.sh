#!/usr/bin/env bash
# Prepare the DBOS peer benchmark environment (idempotent).
# Creates bench/dbos/.venv if it is missing and makes sure dbos==3.4.0 is installed in it.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
DBOS_VERSION="3.4.0"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup.sh: creating virtualenv at $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi

installed="$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("dbos"))' 2>/dev/null || true)"
if [ "$installed" != "$DBOS_VERSION" ]; then
    echo "setup.sh: installing dbos==$DBOS_VERSION" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "dbos==$DBOS_VERSION"
else
    echo "setup.sh: dbos $DBOS_VERSION already installed" >&2
fi
