"""Compensation (sagas): completed steps with a ``compensate=`` are undone newest first.

The plan (which steps, in which order) is journalled before the first undo: parallel
branches may complete more steps while the rollback runs, and a replay must undo exactly
the steps the first execution chose, in the same order.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NonDeterminismError, StepError
from ..records import EntryKind, EntryStatus, JournalEntry
from .children import Children
from .journal import seq_key

if TYPE_CHECKING:
    from .definitions import Step

ROLLBACK = "rollback"
"""The name of the journal entry that records a compensation plan."""


@dataclass(frozen=True)
class Compensable:
    """A completed step that declared a compensation, as the code called it."""

    seq: str
    step: Step[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    ended_at: float


class Compensation(Children):
    """Undoing completed steps when the workflow fails or is cancelled."""

    # Set up by WorkflowContext.__post_init__ (only ContextBase declares dataclass fields).
    compensable: list[Compensable]
    compensations: list[dict[str, Any]]

    def _completed(
        self,
        seq: str,
        step: Step[Any, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        value: Any,
        ended_at: float,
    ) -> None:
        if step.compensation is not None:
            self.compensable.append(Compensable(seq, step, args, kwargs, value, ended_at))

    def should_compensate(self, exc: BaseException) -> bool:
        """The workflow itself failed or was cancelled (not evicted, lost or parked)."""
        if self._leaving() or self.nondeterminism is not None or not self.compensable:
            return False
        return self.cancel_delivered or not isinstance(exc, asyncio.CancelledError)

    async def compensate(self) -> None:
        """Undo completed steps, newest first, each as a journalled step with its retries.

        A compensation that fails for good is recorded and the others still run: leaving
        the rest undone would be worse. The outcomes go into the run's error.
        """
        self.compensating = True
        try:
            seq = self._next_seq()
            entry = self._expect(seq, EntryKind.COMPENSATE, ROLLBACK)
            if entry is None:
                chosen = sorted(
                    self.compensable, key=lambda c: (c.ended_at, seq_key(c.seq)), reverse=True
                )
                plan = [c.seq for c in chosen]
                now = self.host.now()
                await self.host.persist(
                    [
                        JournalEntry(
                            self.run_id,
                            seq,
                            EntryKind.COMPENSATE,
                            ROLLBACK,
                            EntryStatus.COMPLETED,
                            output=json.dumps(plan),
                            started_at=now,
                            ended_at=now,
                        )
                    ]
                )
            else:
                plan = json.loads(entry.output or "[]")
                chosen = await self._replayed_compensables(plan)
            for item in chosen:
                undo = item.step.compensation
                assert undo is not None
                kwargs = dict(item.kwargs)
                if item.step.compensation_takes_result:
                    kwargs["result"] = item.result
                outcome: dict[str, Any] = {
                    "step": item.step.name,
                    "seq": item.seq,
                    "compensation": undo.name,
                }
                try:
                    await self.run_step(undo, item.args, kwargs, kind=EntryKind.COMPENSATE)
                    outcome["status"] = "completed"
                except StepError as exc:
                    outcome["status"] = "failed"
                    outcome["error"] = f"{exc.error_type}: {exc.error_message}"
                self.compensations.append(outcome)
        except asyncio.CancelledError:
            if self.evicting:  # the worker stops (or pauses the run) mid-rollback
                self.rollback_interrupted = True
            raise

    async def _replayed_compensables(self, plan: list[str]) -> list[Compensable]:
        """The planned steps, once the tasks that ran them have replayed them.

        Each was completed before the plan was recorded, so its task replays it from the
        journal without waiting for anything; a few loop turns are enough.
        """
        for _ in range(10_000):
            found = {c.seq: c for c in self.compensable}
            if all(s in found for s in plan):
                return [found[s] for s in plan]
            await asyncio.sleep(0)
        missing = [s for s in plan if s not in {c.seq for c in self.compensable}]
        self.nondeterminism = NonDeterminismError(
            f"run {self.run_id} ({self.workflow_name}): its rollback plan undoes the steps at "
            f"positions {', '.join(plan)}, but the code no longer completes {', '.join(missing)} "
            "before failing. Deploy code that matches the run, or guard the change with "
            "legato.patched(...)."
        )
        raise self.nondeterminism
