"""Find user code from the command line: ``path/to/app.py:workflow`` or ``package.module``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from ..errors import ConfigurationError, InvalidInput, WorkflowNotFound
from ..runtime.definitions import Workflow, registered


def load_app(app: str) -> ModuleType:
    """Import a Python file (``app.py``) or a module (``pkg.mod``) so its workflows register."""
    if app.endswith(".py") or "/" in app or "\\" in app:
        path = Path(app)
        if not path.is_file():
            raise ConfigurationError(f"no such file: {app} (give a .py file or a module name)")
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ConfigurationError(f"cannot import {app}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigurationError(
                f"importing {app} failed: {type(exc).__name__}: {exc}"
            ) from exc
        return module
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        return importlib.import_module(app)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import module {app!r}: {exc}") from exc


def load_workflow(target: str) -> Workflow[Any, Any]:
    """``app.py:name`` or ``module:name`` -> the workflow object."""
    app, sep, name = target.rpartition(":")
    if not sep or not app or not name:
        raise InvalidInput(
            f"expected FILE.py:WORKFLOW or MODULE:WORKFLOW, got {target!r} "
            "(for example examples/orders.py:fulfil_order)"
        )
    module = load_app(app)
    found = getattr(module, name, None)
    if isinstance(found, Workflow):
        return found
    by_name = registered().get(name)
    if by_name is not None:
        return by_name
    known = sorted(n for n, v in vars(module).items() if isinstance(v, Workflow))
    hint = f"; workflows there: {', '.join(known)}" if known else "; it defines no workflows"
    raise WorkflowNotFound(f"{app} has no workflow named {name!r}{hint}")
