"""Find user code from the command line: ``path/to/app.py:workflow`` or ``package.module``,
and the app a worker serves (``path/to/app.py:billing`` names a ``legato.App``)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ..apps import DEFAULT_APP, App
from ..errors import ConfigurationError, InvalidInput, WorkflowNotFound
from ..runtime.definitions import Workflow


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
    by_name = DEFAULT_APP.registered().get(name)
    if by_name is not None:
        return by_name
    known = sorted(n for n, v in vars(module).items() if isinstance(v, Workflow))
    hint = f"; workflows there: {', '.join(known)}" if known else "; it defines no workflows"
    raise WorkflowNotFound(f"{app} has no workflow named {name!r}{hint}")


def load_registry(target: str) -> App:
    """``FILE.py`` / ``MODULE`` (the default app, after importing it so its code registers)
    or ``FILE.py:NAME`` / ``MODULE:NAME``, where ``NAME`` is a :class:`legato.App` there."""
    module_name, sep, name = target.rpartition(":")
    if not sep or not name.isidentifier() or not module_name:
        load_app(target)
        return DEFAULT_APP
    module = load_app(module_name)
    found = getattr(module, name, None)
    if isinstance(found, App):
        return found
    apps = sorted(n for n, v in vars(module).items() if isinstance(v, App))
    hint = f"; apps there: {', '.join(apps)}" if apps else "; it defines no legato.App"
    raise ConfigurationError(f"{module_name} has no legato.App named {name!r}{hint}")


def load_registries(targets: Sequence[str]) -> App:
    """What ``--app A --app B`` serves: every target's registrations together.

    Targets that name the default app (plain files and modules) all register into it; a
    target naming a :class:`legato.App` adds that app. Two apps are combined into one
    (named ``a+b``); a name registered by both for different code is refused, naming it.
    """
    apps: list[App] = []
    for target in targets:
        registry = load_registry(target)
        if not any(registry is seen for seen in apps):
            apps.append(registry)
    if len(apps) == 1:
        return apps[0]
    combined = App("+".join(a.name for a in apps))
    for registry in apps:
        for workflow in registry.workflows.values():
            combined.register(workflow)
        names = ", ".join(a.name for a in apps)
        _merge("routed step", combined.routed_steps, registry.routed_steps, names)
        _merge("workflow family", combined.families, registry.families, names)
        _merge("function", combined.functions, registry.functions, names)
        _merge("task kind", combined.kinds, registry.kinds, names)
    return combined


def _merge(what: str, into: dict[str, Any], more: dict[str, Any], apps: str) -> None:
    for name, value in more.items():
        if name in into and into[name] is not value:
            raise ConfigurationError(
                f"apps {apps} both register the {what} {name!r}: serve them from separate workers"
            )
        into[name] = value
