"""``@legato.workflow`` and ``@legato.step``: what users decorate.

A :class:`Workflow` is registered by name so that any worker that imported the same code
can run (or resume) it. A :class:`Step` called inside a running workflow is journalled;
called anywhere else it simply runs its function, which keeps steps easy to unit-test.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar, overload

from ..errors import ConfigurationError, PayloadError
from ..payload import from_jsonable, to_jsonable
from .retry import NO_RETRY, Retry, seconds

P = ParamSpec("P")
R = TypeVar("R")

_workflows: dict[str, Workflow[Any, Any]] = {}
_routed_steps: dict[str, Step[Any, Any]] = {}
ROUTED_PREFIX = "step:"
_families: dict[str, Callable[[str], Workflow[Any, Any] | None]] = {}


def _return_annotation(fn: Callable[..., Any]) -> Any:
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except Exception:  # unresolvable forward reference: treat the result as plain JSON
        return Any
    return hints.get("return", Any)


def _param_annotations(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except Exception:
        return {}
    return {k: v for k, v in hints.items() if k != "return"}


COMPENSATION_RETRY = Retry(max_attempts=5, initial_interval=1.0, max_interval=30.0)
"""The retry policy of a compensation given as a plain function (undoing must try hard)."""


class Step(Generic[P, R]):
    """A function whose result is journalled when a workflow calls it.

    Sync functions run in the worker's thread pool so they never block the event loop.
    """

    def __init__(
        self,
        fn: Callable[P, Awaitable[R]] | Callable[P, R],
        name: str | None = None,
        retry: Retry | None = None,
        timeout: float | timedelta | None = None,
        queue: str | None = None,
        compensate: Step[..., Any] | Callable[..., Any] | None = None,
        heartbeat_timeout: float | timedelta | None = None,
        kill_on_timeout: bool = False,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__qualname__
        self.retry = retry or NO_RETRY
        self.timeout = seconds(timeout) if timeout is not None else None
        self.heartbeat_timeout = (
            seconds(heartbeat_timeout) if heartbeat_timeout is not None else None
        )
        self.queue = queue
        self.is_async = inspect.iscoroutinefunction(fn)
        if kill_on_timeout and (self.is_async or self.timeout is None):
            raise ConfigurationError(
                f"step {self.name!r}: kill_on_timeout=True needs a sync function and a "
                "timeout (an async step is cancelled at its timeout already)"
            )
        if kill_on_timeout and heartbeat_timeout is not None:
            raise ConfigurationError(
                f"step {self.name!r}: a step run in its own process (kill_on_timeout=True) "
                "cannot send heartbeats to the worker; use timeout= alone"
            )
        self.kill_on_timeout = kill_on_timeout
        self.return_annotation = _return_annotation(fn)
        self.compensation: Step[..., Any] | None = None
        self.compensation_takes_result = False
        if compensate is not None:
            undo = (
                compensate
                if isinstance(compensate, Step)
                else Step(compensate, retry=COMPENSATION_RETRY)
            )
            self.compensation = undo
            self.compensation_takes_result = "result" in inspect.signature(undo.fn).parameters
        functools.update_wrapper(self, fn)
        if queue is not None:
            _routed_steps[self.name] = self

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        from .tasks import current_context

        ctx = current_context()
        if ctx is None:
            return self._call_plain(*args, **kwargs)
        return ctx.run_step(self, args, kwargs)

    async def _call_plain(self, *args: Any, **kwargs: Any) -> R:
        result = self.fn(*args, **kwargs)
        if inspect.isawaitable(result):
            return await result
        return result

    def __repr__(self) -> str:
        return f"<legato step {self.name}>"


class Workflow(Generic[P, R]):
    """A durable ``async def`` function: its runs survive crashes and waits cost nothing."""

    def __init__(
        self,
        fn: Callable[P, Coroutine[Any, Any, R]],
        name: str | None = None,
        version: str | None = None,
        queue: str = "default",
        timeout: float | timedelta | None = None,
        on_failure: Workflow[..., Any] | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise ConfigurationError(
                f"@legato.workflow needs an 'async def' function; {fn.__qualname__} is not"
            )
        self.fn = fn
        self.name = name or fn.__qualname__
        self.signature = inspect.signature(fn)
        self.params = _param_annotations(fn)
        self.return_annotation = _return_annotation(fn)
        self.version = version or _source_hash(fn)
        self.queue = queue
        self.timeout = seconds(timeout) if timeout is not None else None
        if on_failure is not None and not isinstance(on_failure, Workflow):
            raise ConfigurationError(
                f"workflow {self.name!r}: on_failure must be a @legato.workflow that takes "
                "one legato.RunFailure argument"
            )
        self.on_failure = on_failure
        functools.update_wrapper(self, fn)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        """Calling a workflow directly runs it inline (inside another workflow: as part of it)."""
        return self.fn(*args, **kwargs)

    def encode_args(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """Bind and JSON-encode call arguments as ``[args, kwargs]`` (PayloadError if unfit)."""
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PayloadError(f"input does not fit workflow {self.name!r}: {exc}") from exc
        what = f"input of workflow {self.name!r}"
        return [
            [to_jsonable(a, what) for a in bound.args],
            {k: to_jsonable(v, what) for k, v in bound.kwargs.items()},
        ]

    def input_from_json(self, value: Any) -> list[Any]:
        """Turn a user's JSON input (CLI, HTTP) into ``[args, kwargs]``.

        One parameter: the JSON is that parameter's value. Several: a JSON object by
        parameter name, or a JSON array of positional values. None: no input (or null).
        """
        names = list(self.signature.parameters)
        if not names:
            if value not in (None, [], {}):
                raise PayloadError(f"workflow {self.name!r} takes no input, got {value!r}")
            return [[], {}]
        if len(names) == 1:
            args, kwargs = [value], {}
        elif isinstance(value, dict):
            args, kwargs = [], value
        elif isinstance(value, list):
            args, kwargs = value, {}
        else:
            raise PayloadError(
                f"workflow {self.name!r} takes {len(names)} parameters ({', '.join(names)}): "
                "give a JSON object by parameter name or a JSON array"
            )
        self.decode_args([args, kwargs])  # validate now, so bad input fails at start
        return [args, kwargs]

    def decode_args(self, encoded: list[Any]) -> tuple[list[Any], dict[str, Any]]:
        """Validate stored ``[args, kwargs]`` against the parameter annotations."""
        args, kwargs = encoded
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise PayloadError(f"input does not fit workflow {self.name!r}: {exc}") from exc
        for name, value in bound.arguments.items():
            annotation = self.params.get(name, Any)
            bound.arguments[name] = from_jsonable(
                value, annotation, f"input {name!r} of workflow {self.name!r}"
            )
        return list(bound.args), dict(bound.kwargs)

    def __repr__(self) -> str:
        return f"<legato workflow {self.name}>"


def _source_hash(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return "unversioned"
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def register(wf: Workflow[Any, Any]) -> None:
    """Make ``wf`` runnable by name in this process (the decorator does this)."""
    existing = _workflows.get(wf.name)
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
    _workflows[wf.name] = wf


def lookup(name: str) -> Workflow[Any, Any] | None:
    """The registered workflow called ``name``, if this process has imported it.

    ``step:<name>`` is the run that executes a step routed to another queue.
    """
    if name.startswith(ROUTED_PREFIX):
        step = _routed_steps.get(name.removeprefix(ROUTED_PREFIX))
        return _routed_step_workflow(step) if step is not None else None
    for prefix, resolve in _families.items():
        if name.startswith(prefix):
            return resolve(name)
    return _workflows.get(name)


def register_family(prefix: str, resolve: Callable[[str], Workflow[Any, Any] | None]) -> None:
    """Serve every workflow name starting with ``prefix`` by ``resolve(name)``.

    Blueprints use this: one interpreter runs ``blueprint:<namespace>/<name>`` for any
    document, so their names cannot be registered one by one. Workers claim every run
    whose workflow name starts with a registered prefix (see :func:`family_prefixes`).
    """
    _families[prefix] = resolve


def family_prefixes() -> list[str]:
    """The registered families' name prefixes, as workers pass them to claims."""
    return sorted(_families)


def registered() -> dict[str, Workflow[Any, Any]]:
    """All workflows registered in this process, by name (routed steps included)."""
    found: dict[str, Workflow[Any, Any]] = dict(_workflows)
    for name, step in _routed_steps.items():
        found[ROUTED_PREFIX + name] = _routed_step_workflow(step)
    return found


@functools.cache
def _routed_step_workflow(step: Step[Any, Any]) -> Workflow[Any, Any]:
    """A one-step workflow that runs ``step`` here, on a worker serving its queue."""

    async def run_here(*args: Any, **kwargs: Any) -> Any:
        from .tasks import require_context

        return await require_context(step.name).run_step(step, args, kwargs, route=False)

    run_here.__signature__ = inspect.signature(step.fn)  # type: ignore[attr-defined]
    run_here.__annotations__ = {**_param_annotations(step.fn), "return": step.return_annotation}
    return Workflow(run_here, name=ROUTED_PREFIX + step.name, queue=step.queue or "default")


@overload
def workflow(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...


@overload
def workflow(
    *,
    name: str | None = None,
    version: str | None = None,
    queue: str = "default",
    timeout: float | timedelta | None = None,
    on_failure: Workflow[..., Any] | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]: ...


def workflow(
    fn: Callable[P, Coroutine[Any, Any, R]] | None = None,
    /,
    *,
    name: str | None = None,
    version: str | None = None,
    queue: str = "default",
    timeout: float | timedelta | None = None,
    on_failure: Workflow[..., Any] | None = None,
) -> Workflow[P, R] | Callable[[Callable[P, Coroutine[Any, Any, R]]], Workflow[P, R]]:
    """Declare a durable workflow: ``@legato.workflow`` or ``@legato.workflow(name=...)``.

    ``name`` defaults to the function's qualified name; it is how runs find their code,
    so renaming a function with runs in flight needs an explicit ``name``. ``version``
    defaults to a hash of the function's source and is recorded on every run. ``queue``
    is where its runs go unless a start says otherwise; only workers serving that queue
    run them.

    ``timeout`` bounds a whole run: past it, the run is stopped at its next await like a
    cancellation (``finally`` blocks and compensations run) and ends ``failed`` with
    ``RunTimeout``. ``on_failure`` names a workflow started with a
    :class:`legato.RunFailure` when a run of this one fails, for alerting or escalation.
    """

    def wrap(f: Callable[P, Coroutine[Any, Any, R]]) -> Workflow[P, R]:
        wf = Workflow(
            f, name=name, version=version, queue=queue, timeout=timeout, on_failure=on_failure
        )
        register(wf)
        return wf

    return wrap(fn) if fn is not None else wrap


class _StepDecorator:
    def __init__(self, **options: Any) -> None:
        self.options = options

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]]) -> Step[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Step[P, R]: ...

    def __call__(self, fn: Callable[P, Any]) -> Step[P, Any]:
        return Step(fn, **self.options)


@overload
def step(fn: Callable[P, Awaitable[R]], /) -> Step[P, R]: ...


@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(
    *,
    name: str | None = None,
    retry: Retry | None = None,
    timeout: float | timedelta | None = None,
    queue: str | None = None,
    compensate: Step[..., Any] | Callable[..., Any] | None = None,
    heartbeat_timeout: float | timedelta | None = None,
    kill_on_timeout: bool = False,
) -> _StepDecorator: ...


def step(
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
) -> Step[P, Any] | _StepDecorator:
    """Declare a step: ``@legato.step`` or ``@legato.step(retry=..., timeout=...)``.

    Inside a workflow, a step's result (or final error) is committed before the workflow
    moves on, and a replay returns the recorded result without running it again. Steps
    are at-least-once: a crash *during* a step runs it again, so pass
    :func:`legato.idempotency_key` to external systems. By default a step is not retried.

    ``queue`` routes the step to workers serving that queue (a GPU host, say): it runs
    there as a small run of its own while the workflow waits durably, and its result is
    journalled in the workflow like any other step's.

    ``timeout`` bounds each attempt (start to close); ``heartbeat_timeout`` fails an
    attempt that has not called :func:`legato.heartbeat` for that long. A sync step cannot
    be stopped inside its thread: at the timeout the workflow moves on and the thread is
    left to finish; ``kill_on_timeout=True`` runs it in a child process that is killed.

    ``compensate`` undoes the step when the workflow later fails or is cancelled: it is
    called with the step's arguments (and ``result=`` if it has that parameter), as a
    journalled step of its own, in reverse order of completion.
    """
    decorator = _StepDecorator(
        name=name,
        retry=retry,
        timeout=timeout,
        queue=queue,
        compensate=compensate,
        heartbeat_timeout=heartbeat_timeout,
        kill_on_timeout=kill_on_timeout,
    )
    return decorator(fn) if fn is not None else decorator
