"""Blueprints: Serverless Workflow DSL 1.0 documents run on the durable runtime.

Load and validate a document with :func:`load_blueprint`; publish it with
``legato blueprint publish``; start runs with ``AsyncClient.start_blueprint``. Apps
extend what blueprints can call with :func:`function` and :func:`task_kind`.
"""

from __future__ import annotations

from . import builtin_kinds as _builtin_kinds  # noqa: F401  (registers the legato: kinds)
from .bindings import KindCall, TaskKind, function, functions, kinds, task_kind
from .document import Blueprint, load_blueprint, load_blueprint_file
from .processes import allow_processes
from .requirements import required_capabilities
from .runs import blueprint_workflow, new_blueprint_run

__all__ = [
    "Blueprint",
    "KindCall",
    "TaskKind",
    "allow_processes",
    "blueprint_workflow",
    "function",
    "functions",
    "kinds",
    "load_blueprint",
    "load_blueprint_file",
    "new_blueprint_run",
    "required_capabilities",
    "task_kind",
]
