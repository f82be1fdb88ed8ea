"""Apps: what a worker can run, held in one explicit object.

An :class:`App` holds an application's workflows, the steps it routes to other queues,
workflow families (names served by a prefix, like ``blueprint:``), and the Python
functions and extension task kinds its blueprints call. A worker serves one app and
claims only what that app can run, so two applications (``legato.App("billing")`` and
``legato.App("shipping")``) can share one database without taking each other's runs.

The module-level decorators (``@legato.workflow``, ``@legato.step``,
``@legato.blueprint.function``, ``@legato.blueprint.task_kind``) register into
:data:`DEFAULT_APP`, which workers and clients use when given no app: code written
before apps existed keeps working unchanged.

What Legato itself provides (the ``blueprint:`` family, the ``legato:`` task kinds) is
registered in :data:`BUILTINS`, which every app serves besides its own registrations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from .errors import ConfigurationError
from .runtime.definitions import ROUTED_PREFIX, Step, Workflow, routed_step_workflow
from .runtime.retry import Retry

if TYPE_CHECKING:
    from .blueprint.bindings import KindCall, TaskKind

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

Resolver = Callable[[str], Workflow[Any, Any] | None]
KindHandler = Callable[["KindCall"], Awaitable[Any]]


class App:
    """A registry of what one application's workers can run.

    ``name`` identifies the app to operators (``legato workers list`` shows it); it is
    not what runs are matched by: a worker claims runs of the workflows its app
    registers, and blueprint runs whose functions and task kinds its app registers.
    """

    def __init__(self, name: str) -> None:
        if not name:
            raise ConfigurationError("an app needs a name, e.g. legato.App('billing')")
        self.name = name
        self.workflows: dict[str, Workflow[Any, Any]] = {}
        self.routed_steps: dict[str, Step[Any, Any]] = {}
        self.families: dict[str, Resolver] = {}
        self.functions: dict[str, Callable[..., Any]] = {}
        self.kinds: dict[str, TaskKind] = {}

    def __repr__(self) -> str:
        return f"<legato app {self.name}>"

    # -- registering ---------------------------------------------------------------------
    def register(self, wf: Workflow[Any, Any]) -> None:
        """Make ``wf`` runnable by name by this app's workers (the decorator does this)."""
        existing = self.workflows.get(wf.name)
        if existing is not None and existing.fn is not wf.fn:
            same_origin = (existing.fn.__module__, existing.fn.__qualname__) == (
                wf.fn.__module__,
                wf.fn.__qualname__,
            )
            if not same_origin:
                raise ConfigurationError(
                    f"two workflows are named {wf.name!r} ({existing.fn.__module__} and "
                    f"{wf.fn.__module__}): give one of them @legato.workflow(name=...)"
                )
        self.workflows[wf.name] = wf

    @overload
    def workflow(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...

    @overload
    def workflow(
        self,
        /,
        *,
        name: str | None = None,
        version: str | None = None,
        queue: str = "default",
        timeout: float | timedelta | None = None,
        on_failure: Workflow[..., Any] | None = None,
        signals: Mapping[str, Any] | Iterable[str] | None = None,
    ) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]: ...

    def workflow(
        self,
        fn: Callable[P, Coroutine[Any, Any, R]] | None = None,
        /,
        *,
        name: str | None = None,
        version: str | None = None,
        queue: str = "default",
        timeout: float | timedelta | None = None,
        on_failure: Workflow[..., Any] | None = None,
        signals: Mapping[str, Any] | Iterable[str] | None = None,
    ) -> Workflow[P, R] | Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]:
        """Declare a durable workflow: ``@app.workflow`` or ``@app.workflow(name=...)``
        (``@legato.workflow`` declares one of :data:`DEFAULT_APP`).

        ``name`` defaults to the function's qualified name; it is how runs find their code,
        so renaming a function with runs in flight needs an explicit ``name``. ``version``
        defaults to a hash of the function's source and is recorded on every run. ``queue``
        is where its runs go unless a start says otherwise; only workers of this app
        serving that queue run them.

        ``timeout`` bounds a whole run: past it, the run is stopped at its next await like a
        cancellation (``finally`` blocks and compensations run) and ends ``failed`` with
        ``RunTimeout``. ``on_failure`` names a workflow started with a
        :class:`legato.RunFailure` when a run of this one fails, for alerting or escalation.

        ``signals`` declares the signals its runs take: names (``["approve"]``) or names
        with payload types (``{"approve": Approval}``; any type the payloads accept, a
        pydantic model, a dataclass, ``int``...). Each run records them, so any client
        (the ``legato`` command too) refuses another name with ``InvalidInput`` and checks
        a payload against its type before it is buffered; ``wait_for_signal`` validates
        it again on receipt. Without it, any name is accepted (and buffered).
        """

        def wrap(f: Callable[P, Coroutine[Any, Any, R]]) -> Workflow[P, R]:
            wf = Workflow(
                f,
                name=name,
                version=version,
                queue=queue,
                timeout=timeout,
                on_failure=on_failure,
                signals=signals,
            )
            self.register(wf)
            return wf

        return wrap(fn) if fn is not None else wrap

    @overload
    def step(self, fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...

    @overload
    def step(self, fn: Callable[P, R], /) -> Step[P, R]: ...

    @overload
    def step(
        self,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
        queue: str | None = None,
        compensate: Step[..., Any] | Callable[..., Any] | None = None,
        heartbeat_timeout: float | timedelta | None = None,
        kill_on_timeout: bool = False,
    ) -> StepDecorator: ...

    def step(
        self,
        fn: Callable[P, Any] | None = None,
        /,
        *,
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
        queue: str | None = None,
        compensate: Step[..., Any] | Callable[..., Any] | None = None,
        heartbeat_timeout: float | timedelta | None = None,
        kill_on_timeout: bool = False,
    ) -> Step[P, Any] | StepDecorator:
        """Declare a step: ``@app.step`` or ``@app.step(retry=..., timeout=...)``
        (``@legato.step`` is :data:`DEFAULT_APP`'s; a step that is not routed belongs to no
        app: any workflow may call it).

        Inside a workflow, a step's result (or final error) is committed before the workflow
        moves on, and a replay returns the recorded result without running it again. Steps
        are at-least-once: a crash *during* a step runs it again, so pass
        :func:`legato.idempotency_key` to external systems. By default a step is not retried.

        ``queue`` routes the step to workers serving that queue (a GPU host, say): it runs
        there as a small run of its own while the workflow waits durably, and its result is
        journalled in the workflow like any other step's. Such a step is registered in this
        app: the workers of this app serving that queue run it.

        ``timeout`` bounds each attempt (start to close); ``heartbeat_timeout`` fails an
        attempt that has not called :func:`legato.heartbeat` for that long. A sync step cannot
        be stopped inside its thread: at the timeout the workflow moves on and the thread is
        left to finish; ``kill_on_timeout=True`` runs it in a child process that is killed.

        ``compensate`` undoes the step when the workflow later fails or is cancelled: it is
        called with the step's arguments (and ``result=`` if it has that parameter), as a
        journalled step of its own, in reverse order of completion.
        """
        decorator = StepDecorator(
            self,
            name=name,
            retry=retry,
            timeout=timeout,
            queue=queue,
            compensate=compensate,
            heartbeat_timeout=heartbeat_timeout,
            kill_on_timeout=kill_on_timeout,
        )
        return decorator(fn) if fn is not None else decorator

    def family(self, prefix: str, resolve: Resolver) -> None:
        """Serve every workflow name starting with ``prefix`` by ``resolve(name)``.

        For workflows whose names cannot be registered one by one: Legato's blueprints
        are the family ``blueprint:`` (one interpreter runs every document). This app's
        workers claim every run whose workflow name starts with a prefix it serves.
        """
        if not prefix:
            raise ConfigurationError("a workflow family needs a non-empty name prefix")
        self.families[prefix] = resolve

    def function(self, name: str) -> Callable[[F], F]:
        """Make a Python callable callable from blueprints as ``call: <name>`` on this
        app's workers (see :func:`legato.blueprint.function`)."""
        from .blueprint.bindings import check_function_name

        check_function_name(name)

        def register(fn: F) -> F:
            _check_unique(name, fn, self.functions.get(name), "function")
            self.functions[name] = fn
            return fn

        return register

    def task_kind(
        self,
        name: str,
        *,
        check: Callable[[Any], list[str]] | None = None,
        summary: str = "",
    ) -> Callable[[KindHandler], KindHandler]:
        """Register an extension task kind ``<namespace>:<kind>`` on this app (see
        :func:`legato.blueprint.task_kind`). The ``legato`` namespace is Legato's own."""
        from .blueprint.bindings import check_kind_name, make_task_kind

        check_kind_name(name)
        if self is not BUILTINS and name.startswith("legato:"):
            raise ConfigurationError(
                f"task kind {name!r}: the 'legato' namespace is Legato's own; "
                "use your application's, e.g. 'acme:approve'"
            )

        def register(handler: KindHandler) -> KindHandler:
            kind = make_task_kind(name, handler, check, summary)
            existing = self.kinds.get(name)
            _check_unique(name, handler, existing.handler if existing else None, "task kind")
            self.kinds[name] = kind
            return handler

        return register

    # -- looking up ----------------------------------------------------------------------
    def _layers(self) -> tuple[App, ...]:
        """This app's registrations, then Legato's own (which every app serves)."""
        return (self,) if self is BUILTINS else (self, BUILTINS)

    def lookup(self, name: str) -> Workflow[Any, Any] | None:
        """The workflow called ``name`` that this app can run, or None.

        ``step:<name>`` is the run that executes a step routed to another queue; a name
        with a family's prefix is resolved by that family.
        """
        if name.startswith(ROUTED_PREFIX):
            step = self.routed_steps.get(name.removeprefix(ROUTED_PREFIX))
            return routed_step_workflow(step) if step is not None else None
        for layer in self._layers():
            for prefix, resolve in layer.families.items():
                if name.startswith(prefix):
                    return resolve(name)
        return self.workflows.get(name)

    def registered(self) -> dict[str, Workflow[Any, Any]]:
        """This app's workflows by name, routed steps (``step:<name>``) included."""
        found: dict[str, Workflow[Any, Any]] = dict(self.workflows)
        for name, step in self.routed_steps.items():
            found[ROUTED_PREFIX + name] = routed_step_workflow(step)
        return found

    def queues(self, module: str | None = None) -> list[str]:
        """The queues this app's workflows and routed steps use, sorted; only those whose
        function is defined in ``module`` (a module's ``__name__``) when it is given.

        What a worker must serve to run them all: ``legato run FILE.py:WF`` serves the
        queues of what FILE.py defines.
        """
        used = {
            wf.queue
            for wf in self.workflows.values()
            if module is None or wf.fn.__module__ == module
        }
        used |= {
            step.queue
            for step in self.routed_steps.values()
            if step.queue is not None and (module is None or step.fn.__module__ == module)
        }
        return sorted(used)

    def family_prefixes(self) -> list[str]:
        """The prefixes of the families this app serves (Legato's own included)."""
        return sorted({prefix for layer in self._layers() for prefix in layer.families})

    def kind(self, name: str) -> TaskKind | None:
        """The extension task kind ``name`` (this app's, or one of Legato's own)."""
        for layer in self._layers():
            if name in layer.kinds:
                return layer.kinds[name]
        return None

    def all_kinds(self) -> dict[str, TaskKind]:
        """Every task kind this app's blueprints may call, Legato's own included."""
        found: dict[str, TaskKind] = {}
        for layer in reversed(self._layers()):
            found.update(layer.kinds)
        return found

    def kind_checks(self) -> dict[str, Callable[[Any], list[str]]]:
        """The ``with`` check of every kind this app's blueprints may call (validation)."""
        return {name: kind.check for name, kind in self.all_kinds().items()}

    def capabilities(self) -> list[str]:
        """What this app adds to what blueprint runs may call: its functions and task
        kinds, by name. A blueprint run records the names its document calls (see
        :func:`legato.blueprint.required_capabilities`); a worker claims it only if its
        app has them all. Legato's own kinds are in every app and never required."""
        return sorted({*self.functions, *self.kinds})


class StepDecorator:
    """``@app.step(...)`` with options: makes the step, registers it if it is routed."""

    def __init__(self, app: App, **options: Any) -> None:
        self.app = app
        self.options = options

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Step[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Step[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Step[P, Any]:
        step: Step[P, Any] = Step(fn, **self.options)
        if step.queue is not None:
            self.app.routed_steps[step.name] = step
        return step


def _check_unique(name: str, new: Any, existing: Any, what: str) -> None:
    """Two different callables under one name is a mistake; re-importing a module is not."""
    if existing is None or existing is new:
        return
    origin = (getattr(new, "__module__", None), getattr(new, "__qualname__", None))
    if origin != (getattr(existing, "__module__", None), getattr(existing, "__qualname__", None)):
        raise ConfigurationError(
            f"two {what}s are registered as {name!r} ({existing.__module__}."
            f"{existing.__qualname__} and {new.__module__}.{new.__qualname__}): rename one"
        )


BUILTINS = App("legato")
"""What Legato provides to every app: the ``blueprint:`` family, the ``legato:`` kinds."""

DEFAULT_APP = App("default")
"""The app the module-level decorators register into, and workers and clients serve
when given no app."""

workflow = DEFAULT_APP.workflow
step = DEFAULT_APP.step
