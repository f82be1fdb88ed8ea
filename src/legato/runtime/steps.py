"""Steps: attempts, retries with (durable) back-off, and what a replay returns.

A step's result (or final error) is committed before the workflow moves past it. An
attempt in flight when its worker died counts toward ``max_attempts``. A step attempt
the run's cancel or timeout interrupts is recorded as cancelled at its position.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import PayloadError, StepError
from ..logs import run_fields
from ..payload import dumps, loads, to_jsonable
from ..records import EntryKind, EntryStatus, JournalEntry
from .diagnostics import describe_error
from .host import RUNNING_MARK_DELAY, StepInfo
from .interruption import cut_short, interrupted_for_good, interrupted_record
from .waits import NOT_YET, Wait, Waits

if TYPE_CHECKING:
    from .definitions import Step

log = logging.getLogger(__name__)

DURABLE_BACKOFF = 2.0
"""Back-offs at least this long (seconds) are durable timers: the run leaves memory."""


class Steps(Waits):
    """Running steps from a workflow."""

    async def run_step(
        self,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        route: bool = True,
        kind: EntryKind = EntryKind.STEP,
    ) -> Any:
        await self._enter()
        seq = self._next_seq()
        entry = self._expect(seq, kind, step.name)
        if route and step.queue is not None:
            value = await self._routed_step(step, args, kwargs, seq, entry)
            self._completed(seq, step, args, kwargs, value, self.host.now())
            return value
        if entry is not None:
            if entry.status is EntryStatus.COMPLETED:
                value = loads(entry.output, step.return_annotation, f"result of step {step.name}")
                self._completed(seq, step, args, kwargs, value, entry.ended_at or 0.0)
                return value
            if entry.status is EntryStatus.FAILED:
                err = entry.error_dict() or {}
                raise StepError(
                    step.name,
                    err.get("type", "Error"),
                    err.get("message", ""),
                    entry.attempts,
                    seq,
                )
            if entry.status is EntryStatus.ABANDONED:
                await self._dormant(entry)
        else:
            await self._deliver_cancel(seq)
        return await self._attempts(step, args, kwargs, seq, kind, entry)

    async def _attempts(
        self,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        seq: str,
        kind: EntryKind,
        entry: JournalEntry | None,
    ) -> Any:
        """Run the step's attempts from where the journal left off, recording each one."""
        attempt = entry.attempts if entry is not None else 0
        history = entry.attempt_list() if entry is not None else []
        started = entry.started_at if entry is not None and entry.started_at else self.host.now()
        details = json.loads(entry.progress) if entry is not None and entry.progress else None
        input_json = None if entry is not None else _encode_call(step.name, args, kwargs)
        if entry is not None and cut_short(entry):
            # The attempt was cut short by a worker's death: it counts toward the policy.
            history.append(interrupted_record(entry))
            ended = interrupted_for_good(step, entry, history, self.host.now())
            if ended is not None:
                failed, error = ended
                await self.host.persist([failed], settles=True)  # final, as on replay
                raise error
        if entry is not None and entry.status is EntryStatus.WAITING and entry.wake_at:
            await self._backoff_until(entry)  # a durable back-off between attempts
        while True:
            attempt += 1
            attempt_started = self.host.now()
            running = JournalEntry(
                self.run_id,
                seq,
                kind,
                step.name,
                EntryStatus.RUNNING,
                attempts=attempt,
                input=input_json,
                started_at=started,
                attempt_log=json.dumps(history) if history else None,
            )
            if self._stop_due():  # a stop that came during a back-off: no new attempt
                await self._cancel_at(replace(running, attempts=attempt - 1))
            # Most steps finish in well under RUNNING_MARK_DELAY: writing "running" only for
            # the slow ones halves the writes of a fast step and shows every slow one.
            mark = self.host.persist_later([running], RUNNING_MARK_DELAY)
            channel = self.host.heartbeat_channel(
                lambda d, r=running: self.host.persist_nowait(  # type: ignore[misc]
                    [replace(r, progress=dumps(d, f"heartbeat details of {step.name!r}"))]
                )
            )
            info = StepInfo(self.run_id, seq, step.name, attempt, details, channel)
            try:
                value = await self.host.execute_step(step, args, kwargs, info)
                jsonable = to_jsonable(value, f"result of step {step.name!r}")
            except asyncio.CancelledError:
                channel.close()
                mark.cancel()
                await self._step_cancelled(running)
                raise
            except Exception as exc:
                channel.close()
                mark.cancel()
                now = self.host.now()
                history.append(_attempt_record(attempt, attempt_started, now, exc))
                if channel.details is not None:  # the next attempt resumes from here
                    details = channel.details
                failed = replace(
                    running,
                    error=describe_error(exc),
                    attempt_log=json.dumps(history),
                    progress=dumps(details, "heartbeat details") if details else None,
                )
                retry = step.retry
                if not isinstance(exc, PayloadError) and retry.should_retry(exc, attempt):
                    delay = retry.delay(attempt)
                    self._log_retry(step, seq, attempt, delay, exc)
                    if delay >= DURABLE_BACKOFF:
                        waiting = replace(failed, status=EntryStatus.WAITING, wake_at=now + delay)
                        await self.host.persist([waiting])
                        await self._backoff_until(waiting)
                    else:
                        self.host.persist_nowait([failed])
                        try:
                            await self.host.backoff(delay)  # a stop cuts it short
                        except asyncio.CancelledError:
                            await self._step_cancelled(failed)
                            raise
                    continue
                final = replace(failed, status=EntryStatus.FAILED, ended_at=now)
                # The step failed for good: the workflow sees it, as a replay will (a
                # timeout of the workflow's that fires during this write must not win).
                await self.host.persist([final], settles=True)
                raise StepError(
                    step.name,
                    f"{type(exc).__module__}.{type(exc).__qualname__}",
                    str(exc),
                    attempt,
                    seq,
                ) from exc
            channel.close()
            mark.cancel()
            now = self.host.now()
            if history:
                history.append(_attempt_record(attempt, attempt_started, now, None))
            await self.host.persist(
                [
                    replace(
                        running,
                        status=EntryStatus.COMPLETED,
                        output=(output := json.dumps(jsonable, separators=(",", ":"))),
                        ended_at=now,
                        attempt_log=json.dumps(history) if history else None,
                    )
                ],
                settles=True,  # the step completed: the workflow sees it, as a replay will
            )
            # What a replay will decode, not the object the step returned (a StrEnum, a
            # tuple, a dataclass without annotations would differ after the round trip).
            value = loads(output, step.return_annotation, f"result of {step.name}")
            self._completed(seq, step, args, kwargs, value, now)
            return value

    async def _step_cancelled(self, running: JournalEntry) -> None:
        """The attempt's await was cancelled: by the run's stop, by the workflow itself,
        or because the run leaves this worker. Only the first two are recorded."""
        if self._leaving():
            return
        if self._stop_due():
            await self._cancel_at(running)  # raises CancelledError
        self._abandon(running)

    def _log_retry(
        self, step: Step[Any, Any], seq: str, attempt: int, delay: float, exc: BaseException
    ) -> None:
        worker = self.host.worker_id
        log.warning(
            "run %s (%s): step %r at position %s failed (attempt %d of %d: %s: %s); "
            "retry scheduled in %.3gs on worker %s",
            self.run_id,
            self.workflow_name,
            step.name,
            seq,
            attempt,
            step.retry.max_attempts,
            type(exc).__name__,
            exc,
            delay,
            worker,
            extra=run_fields(self.run_id, self.workflow_name, worker),
        )

    async def _backoff_until(self, entry: JournalEntry) -> None:
        """Wait out a durable back-off; returns at once if it is over."""
        wake_at = entry.wake_at
        assert wake_at is not None

        async def check(_: Any) -> Any:
            return None if self.host.now() >= wake_at else NOT_YET

        await self._until(entry, Wait(entry.seq, wake_at), check)

    def _completed(
        self,
        seq: str,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        value: Any,
        ended_at: float,
    ) -> None:
        """A step completed (hook for compensation)."""

    async def _routed_step(
        self,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        seq: str,
        entry: JournalEntry | None,
    ) -> Any:
        raise NotImplementedError  # pragma: no cover - see children.py


def _attempt_record(
    attempt: int, started: float, ended: float, exc: BaseException | None
) -> dict[str, Any]:
    record: dict[str, Any] = {"attempt": attempt, "started_at": started, "ended_at": ended}
    if exc is not None:
        record["error"] = {
            "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
            "message": str(exc),
        }
    return record


def _encode_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    what = f"arguments of step {name!r}"
    if kwargs:
        return dumps({"args": list(args), "kwargs": kwargs}, what)
    return dumps(list(args), what)
