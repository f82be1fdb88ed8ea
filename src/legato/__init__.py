"""Legato: durable workflow orchestration for Python.

Decorate ``async def`` workflows and their steps; run a :class:`Worker` on a database
(an embedded SQLite file by default); start and signal runs with a :class:`Client`.
Applications that share a database each register into their own :class:`App`.
"""

from . import blueprint
from .apps import App, step, workflow
from .client import AsyncClient, Client, RunHandle, RunPage
from .errors import (
    BlueprintFault,
    BlueprintInvalid,
    BlueprintNotFound,
    ChildRunError,
    ConfigurationError,
    Conflict,
    InvalidInput,
    LegatoError,
    NonDeterminismError,
    NotFound,
    PayloadError,
    RunChanged,
    RunEnded,
    RunFailed,
    RunNotFound,
    SchemaError,
    StepCancelled,
    StepError,
    StepInterrupted,
    StepTimeout,
    StoreError,
    Unavailable,
    WaitTimeout,
    WorkflowError,
    WorkflowNotFound,
)
from .records import (
    EntryKind,
    EntryStatus,
    JournalEntry,
    Pause,
    PauseScope,
    RunFailure,
    RunRecord,
    RunStatus,
)
from .runtime.commands import (
    child,
    heartbeat,
    idempotency_key,
    now,
    patched,
    random,
    signal,
    sleep,
    step_info,
    timer,
    uuid4,
    wait_any,
    wait_for_signal,
)
from .runtime.context import WaitResult
from .runtime.definitions import Step, Workflow
from .runtime.host import StepInfo
from .runtime.retry import Retry
from .worker import Worker

__version__ = "0.1.0.dev0"

__all__ = [
    "App",
    "AsyncClient",
    "BlueprintFault",
    "BlueprintInvalid",
    "BlueprintNotFound",
    "ChildRunError",
    "Client",
    "ConfigurationError",
    "Conflict",
    "EntryKind",
    "EntryStatus",
    "InvalidInput",
    "JournalEntry",
    "LegatoError",
    "NonDeterminismError",
    "NotFound",
    "Pause",
    "PauseScope",
    "PayloadError",
    "Retry",
    "RunChanged",
    "RunEnded",
    "RunFailed",
    "RunFailure",
    "RunHandle",
    "RunNotFound",
    "RunPage",
    "RunRecord",
    "RunStatus",
    "SchemaError",
    "Step",
    "StepCancelled",
    "StepError",
    "StepInfo",
    "StepInterrupted",
    "StepTimeout",
    "StoreError",
    "Unavailable",
    "WaitResult",
    "WaitTimeout",
    "Worker",
    "Workflow",
    "WorkflowError",
    "WorkflowNotFound",
    "__version__",
    "blueprint",
    "child",
    "heartbeat",
    "idempotency_key",
    "now",
    "patched",
    "random",
    "signal",
    "sleep",
    "step",
    "step_info",
    "timer",
    "uuid4",
    "wait_any",
    "wait_for_signal",
    "workflow",
]
