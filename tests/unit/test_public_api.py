"""The public surface is deliberate: this test locks it."""

from __future__ import annotations

import legato

EXPECTED = {
    "App",
    "Pause",
    "PauseScope",
    "RunFailure",
    "StepTimeout",
    "StepInterrupted",
    "heartbeat",
    "AsyncClient",
    "BlueprintFault",
    "BlueprintInvalid",
    "BlueprintNotFound",
    "blueprint",
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
    "PayloadError",
    "Retry",
    "RunChanged",
    "RunEnded",
    "RunFailed",
    "WorkflowNotFound",
    "Unavailable",
    "RunHandle",
    "RunPage",
    "RunNotFound",
    "RunRecord",
    "RunStatus",
    "SchemaError",
    "Step",
    "StepCancelled",
    "StepError",
    "StepInfo",
    "StoreError",
    "WaitResult",
    "WaitTimeout",
    "Worker",
    "Workflow",
    "WorkflowError",
    "__version__",
    "child",
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
}


def test_all_is_locked() -> None:
    assert set(legato.__all__) == EXPECTED


def test_every_public_name_exists_and_is_documented() -> None:
    for name in legato.__all__:
        value = getattr(legato, name)
        if callable(value):
            assert value.__doc__, f"legato.{name} has no docstring"


def test_every_error_derives_from_legato_error() -> None:
    errors = [getattr(legato, n) for n in legato.__all__ if n.endswith(("Error", "Failed"))]
    errors.append(legato.RunNotFound)
    for error in errors:
        assert issubclass(error, legato.LegatoError), error
