"""What ``@legato.workflow`` and ``@legato.step`` make: :class:`Workflow` and :class:`Step`.

A :class:`Workflow` is registered by name in an app (:mod:`legato.apps`) so that any
worker serving that app can run (or resume) it. A :class:`Step` called inside a running
workflow is journalled; called anywhere else it simply runs its function, which keeps
steps easy to unit-test.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from datetime import timedelta
from typing import Any, Generic, ParamSpec, TypeVar

from ..errors import ConfigurationError, PayloadError
from ..payload import from_jsonable, json_schema, to_jsonable
from .retry import NO_RETRY, Retry, seconds

P = ParamSpec("P")
R = TypeVar("R")

ROUTED_PREFIX = "step:"
"""Workflow names of the runs that execute steps routed to another queue."""


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
        requires: tuple[str, ...] = (),
        signals: Mapping[str, Any] | Iterable[str] | None = None,
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
        # Capabilities a worker's app must have to run its runs (a blueprint's functions
        # and task kinds); recorded on each run started from this object.
        self.requires = tuple(sorted(set(requires)))
        # The signals its runs take (name -> payload type), or None: any name. Recorded on
        # each run, so a client without this code refuses other names (see signal_spec).
        self.signals = _declared_signals(self.name, signals)
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

    def signal_spec(self) -> str | None:
        """The declared signals as a run records them: JSON, name -> JSON Schema of the
        payload (``{}`` for any JSON); None when the workflow declares none."""
        if self.signals is None:
            return None
        return json.dumps(
            {name: json_schema(kind) for name, kind in self.signals.items()}, sort_keys=True
        )

    def __repr__(self) -> str:
        return f"<legato workflow {self.name}>"


def _declared_signals(
    workflow: str, signals: Mapping[str, Any] | Iterable[str] | None
) -> dict[str, Any] | None:
    if signals is None:
        return None
    if isinstance(signals, str):
        raise ConfigurationError(
            f"workflow {workflow!r}: signals= takes names and their payload types, e.g. "
            f"signals={{{signals!r}: Approval}} or signals=[{signals!r}], not one string"
        )
    found = dict(signals) if isinstance(signals, Mapping) else dict.fromkeys(signals, Any)
    for name, kind in found.items():
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"workflow {workflow!r}: signal names are non-empty text")
        try:
            json_schema(kind)
        except PayloadError as exc:
            raise ConfigurationError(f"workflow {workflow!r}, signal {name!r}: {exc}") from exc
    return found


def _source_hash(fn: Callable[..., Any]) -> str:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return "unversioned"
    return hashlib.sha256(source.encode()).hexdigest()[:12]


@functools.cache
def routed_step_workflow(step: Step[Any, Any]) -> Workflow[Any, Any]:
    """A one-step workflow that runs ``step`` here, on a worker serving its queue."""

    async def run_here(*args: Any, **kwargs: Any) -> Any:
        from .tasks import require_context

        return await require_context(step.name).run_step(step, args, kwargs, route=False)

    run_here.__signature__ = inspect.signature(step.fn)  # type: ignore[attr-defined]
    run_here.__annotations__ = {**_param_annotations(step.fn), "return": step.return_annotation}
    return Workflow(run_here, name=ROUTED_PREFIX + step.name, queue=step.queue or "default")
