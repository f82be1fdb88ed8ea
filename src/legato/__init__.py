"""Legato: durable workflow orchestration for Python.

Decorate ``async def`` workflows and their steps; run a :class:`Worker` on a database
(an embedded SQLite file by default); start and signal runs with a :class:`Client`.
"""

from . import blueprint
from .client import AsyncClient, Client, RunHandle
from .errors import (
    BlueprintFault,
    BlueprintInvalid,
    BlueprintNotFound,
    ChildRunError,
    ConfigurationError,
    LegatoError,
    NonDeterminismError,
    PayloadError,
    RunFailed,
    RunNotFound,
    SchemaError,
    StepCancelled,
    StepError,
    StepInterrupted,
    StepTimeout,
    StoreError,
    WaitTimeout,
    WorkflowError,
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
from .runtime.definitions import Step, Workflow, step, workflow
from .runtime.host import StepInfo
from .runtime.retry import Retry
from .worker import Worker

__version__ = "0.1.0.dev0"

__all__ = [
    "AsyncClient",
    "BlueprintFault",
    "BlueprintInvalid",
    "BlueprintNotFound",
    "ChildRunError",
    "Client",
    "ConfigurationError",
    "EntryKind",
    "EntryStatus",
    "JournalEntry",
    "LegatoError",
    "NonDeterminismError",
    "Pause",
    "PauseScope",
    "PayloadError",
    "Retry",
    "RunFailed",
    "RunFailure",
    "RunHandle",
    "RunNotFound",
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
    "WaitResult",
    "WaitTimeout",
    "Worker",
    "Workflow",
    "WorkflowError",
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
