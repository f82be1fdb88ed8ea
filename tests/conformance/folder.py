"""Where the shared Serverless Workflow conformance folder is (read in place, never copied).

It sits beside the repository (``../shared/conformance/serverless-workflow``). A clean
clone made elsewhere (``git clone . /tmp/fresh``) finds it beside the repository it was
cloned from; ``LEGATO_CONFORMANCE_DIR`` names it explicitly.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RELATIVE = Path("shared") / "conformance" / "serverless-workflow"


def _origin() -> Path | None:
    """The local repository this checkout was cloned from, if it was cloned from a path."""
    try:
        url = subprocess.run(
            ["git", "-C", str(REPO), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    path = Path(url.removeprefix("file://"))
    return path.resolve() if url and path.is_absolute() and path.exists() else None


def conformance_folder() -> Path:
    """The folder, or where it was expected (callers check that it exists)."""
    explicit = os.environ.get("LEGATO_CONFORMANCE_DIR")
    if explicit:
        return Path(explicit)
    beside = REPO.parent / RELATIVE
    if beside.exists():
        return beside
    origin = _origin()
    if origin is not None and (origin.parent / RELATIVE).exists():
        return origin.parent / RELATIVE
    return beside


def require(path: Path, what: str) -> None:
    """Fail, saying where to find it, when ``path`` (part of the folder) is missing.

    Never a skip: a test that cannot read the conformance kit has checked nothing.
    """
    if not path.is_dir():
        pytest.fail(
            f"{what} not found at {path.resolve()}: put the shared conformance folder beside "
            "the repository or set LEGATO_CONFORMANCE_DIR",
            pytrace=False,
        )
