"""Child runs and routed steps: started once, awaited durably, retried as new runs.

A child's id defaults to ``<parent>:<position>`` so a replay never starts it twice. The
child's end is written into the parent's journal entry (and wakes the parent) in the
same transaction; a parent still in memory is woken with that entry.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from ..errors import ChildRunError, StepError
from ..payload import dumps, loads
from ..records import EntryKind, EntryStatus, JournalEntry, NewRun
from .retry import NO_RETRY, Retry
from .steps import Steps
from .waits import NOT_YET, Wait

if TYPE_CHECKING:
    from .definitions import Step, Workflow

_ENDED = (EntryStatus.COMPLETED, EntryStatus.FAILED)


class Children(Steps):
    """Child runs, and steps routed to a queue (run as child runs)."""

    def _child_id(self, seq: str, attempt: int = 1, given: str = "") -> str:
        """``<run>:<seq>`` (or the id the code gave); a redriven run's new children and
        retried children get a suffix, so they are new runs, not the failed ones again."""
        child_id = given or f"{self.run_id}:{seq}"
        if self.redrives:
            child_id += f"~{self.redrives}"
        if attempt > 1:
            child_id += f"#{attempt}"
        return child_id

    async def child(
        self,
        wf: Workflow[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str,
        retry: Retry | None = None,
        detached: bool = False,
    ) -> Any:
        await self._enter()
        seq = self._next_seq()
        entry = self._expect(seq, EntryKind.CHILD, wf.name)
        policy = retry or NO_RETRY
        encoded = json.dumps(wf.encode_args(args, kwargs), separators=(",", ":"))

        def start(attempt: int) -> NewRun:
            now = self.host.now()
            return NewRun(
                run_id=self._child_id(seq, attempt, run_id),
                workflow=wf.name,
                input=encoded,
                version=wf.version,
                parent_run_id=self.run_id,
                parent_seq=seq,
                queue=wf.queue,
                detached=detached,
                deadline_at=now + wf.timeout if wf.timeout is not None else None,
                requires=wf.requires,
                signals=wf.signal_spec(),
            )

        if entry is None:
            entry = await self._start_child(seq, EntryKind.CHILD, wf.name, start(1))
        elif entry.status is EntryStatus.ABANDONED:
            await self._dormant(entry)
        what = f"result of child {wf.name}"
        while True:
            attempt = max(entry.attempts, 1)
            failure = ChildRunError(entry.child_run_id or "?", "failed", entry.error_dict(), seq)
            if entry.status is EntryStatus.FAILED and policy.should_retry(failure, attempt):
                # The child failed but may try again: a new child run, same position.
                if self._stop_due():
                    await self._cancel_at(entry)
                try:
                    await self.host.backoff(policy.delay(attempt))  # a stop cuts it short
                except asyncio.CancelledError:
                    if self._stop_due():
                        await self._cancel_at(entry)
                    raise
                if self._stop_due():
                    await self._cancel_at(entry)
                entry = await self._start_child(
                    seq, EntryKind.CHILD, wf.name, start(attempt + 1), attempt + 1
                )
                continue
            if entry.status not in _ENDED:
                entry = await self._child_ended(entry)
                continue
            if entry.status is EntryStatus.COMPLETED:
                return loads(entry.output, wf.return_annotation, what)
            raise failure

    async def _child_ended(self, entry: JournalEntry) -> JournalEntry:
        """The parent's entry for a child, once the child has ended (a durable wait)."""
        if entry.status in _ENDED:
            return entry

        async def check(woken: Any) -> Any:
            if isinstance(woken, JournalEntry) and woken.status in _ENDED:
                return woken
            if woken is None:
                # The child may have ended before this wait existed: have the worker
                # look once more, now that it knows what this run waits for.
                self.host.expect_wakeup()
            return NOT_YET

        ended: JournalEntry = await self._until(entry, Wait(entry.seq, None, child=True), check)
        return ended

    async def _routed_step(
        self,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        seq: str,
        entry: JournalEntry | None,
    ) -> Any:
        """Run ``step`` on a worker serving its queue, as a run of its own; wait durably."""
        from .definitions import ROUTED_PREFIX

        if entry is None:
            child_id = self._child_id(seq)
            encoded = dumps([list(args), kwargs], f"arguments of step {step.name!r}")
            child = NewRun(
                run_id=child_id,
                workflow=ROUTED_PREFIX + step.name,
                input=encoded,
                parent_run_id=self.run_id,
                parent_seq=seq,
                queue=step.queue or "default",
            )
            entry = await self._start_child(seq, EntryKind.STEP, step.name, child)
        elif entry.status is EntryStatus.ABANDONED:
            await self._dormant(entry)
        ended = await self._child_ended(entry)
        if ended.status is EntryStatus.COMPLETED:
            return loads(ended.output, step.return_annotation, f"result of step {step.name}")
        err = ended.error_dict() or {}
        raise StepError(step.name, err.get("type", "Error"), err.get("message", ""), 1, seq)

    async def _start_child(
        self, seq: str, kind: EntryKind, name: str, child: NewRun, attempt: int = 1
    ) -> JournalEntry:
        """Create ``child`` and this run's entry for it (kind CHILD, or STEP when routed)."""
        if attempt == 1:  # a retried child's position already holds its entry
            await self._deliver_cancel(seq)
        waiting = JournalEntry(
            self.run_id,
            seq,
            kind,
            name,
            EntryStatus.WAITING,
            attempts=attempt,
            input=child.input,
            started_at=self.host.now(),
            child_run_id=child.run_id,
        )
        self.started_children = True
        return await self.host.start_child(waiting, child)
