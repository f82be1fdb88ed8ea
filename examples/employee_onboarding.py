"""Employee onboarding with rollback: four steps, each with a compensation.

Create the accounts, assign equipment, schedule training, notify the manager. If a step
fails for good (after its retries), the steps that completed are undone newest first:
training is cancelled, equipment is returned, accounts are deleted. Each compensation is
a journalled step: a worker that crashes while rolling back resumes the rollback on any
worker without undoing anything twice.

The "systems" here (identity, inventory, LMS, mail) append what they do to a ledger file
so you can watch it; set ``ONBOARDING_LEDGER`` to choose the file and
``ONBOARDING_LATENCY`` (seconds) to make each call slow enough to interrupt.

    legato run examples/employee_onboarding.py:onboard \\
        --input '{"name": "Ada Lovelace", "team": "compilers", "manager": "grace"}'
    legato run examples/employee_onboarding.py:onboard \\
        --input '{"name": "Alan Turing", "team": "crypto", "manager": "joan",
                  "fail_at": "schedule_training"}'
    legato runs show <run id>     # the journal shows each step, then each compensation
"""

from __future__ import annotations

import json
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import legato


@dataclass
class NewHire:
    name: str
    team: str
    manager: str
    fail_at: str | None = None  # simulate an outage of one system, to see the rollback


class SystemDown(Exception):
    """A downstream system refused the call."""


def _ledger(action: str, subject: str) -> None:
    """What a real system would do: here, one JSON line per call in the ledger file."""
    time.sleep(float(os.environ.get("ONBOARDING_LATENCY", "0")))
    path = Path(os.environ.get("ONBOARDING_LEDGER", "onboarding-ledger.jsonl"))
    line = {"action": action, "subject": subject, "pid": os.getpid(), "at": time.time()}
    with path.open("a") as ledger:
        ledger.write(json.dumps(line) + "\n")


def _maybe_down(hire: NewHire, system: str) -> None:
    if hire.fail_at == system:
        raise SystemDown(f"{system} is down")


# -- compensations: each undoes one step; given the step's arguments and its result ------
@legato.step(retry=legato.Retry(max_attempts=5, initial_interval=0.5))
def delete_account(hire: NewHire, result: str) -> None:
    _ledger("delete_account", result)


@legato.step(retry=legato.Retry(max_attempts=5, initial_interval=0.5))
def return_equipment(hire: NewHire, result: str) -> None:
    _ledger("return_equipment", result)


@legato.step(retry=legato.Retry(max_attempts=5, initial_interval=0.5))
def cancel_training(hire: NewHire, result: str) -> None:
    _ledger("cancel_training", result)


@legato.step(retry=legato.Retry(max_attempts=5, initial_interval=0.5))
def send_correction(hire: NewHire, result: str) -> None:
    _ledger("send_correction", result)


# -- the steps ----------------------------------------------------------------------------
_RETRY = legato.Retry(max_attempts=3, initial_interval=0.2, non_retryable=(SystemDown,))


@legato.step(retry=_RETRY, compensate=delete_account)
def create_account(hire: NewHire) -> str:
    _maybe_down(hire, "create_account")
    login = hire.name.lower().replace(" ", ".")
    _ledger("create_account", login)
    return login


@legato.step(retry=_RETRY, compensate=return_equipment)
def assign_equipment(hire: NewHire) -> str:
    _maybe_down(hire, "assign_equipment")
    asset = f"laptop-{zlib.crc32(hire.name.encode()) % 10_000:04d}"
    _ledger("assign_equipment", asset)
    return asset


@legato.step(retry=_RETRY, compensate=cancel_training)
def schedule_training(hire: NewHire) -> str:
    _maybe_down(hire, "schedule_training")
    session = f"{hire.team}-onboarding"
    _ledger("schedule_training", session)
    return session


@legato.step(retry=_RETRY, compensate=send_correction)
def notify_manager(hire: NewHire) -> str:
    _maybe_down(hire, "notify_manager")
    _ledger("notify_manager", hire.manager)
    return hire.manager


@legato.workflow
async def onboard(hire: NewHire) -> dict[str, str]:
    """Onboard one new hire; on a failure, everything done so far is rolled back."""
    login = await create_account(hire)
    asset = await assign_equipment(hire)
    session = await schedule_training(hire)
    manager = await notify_manager(hire)
    return {"login": login, "laptop": asset, "training": session, "manager": manager}
