"""Blueprint runs replay the path they took, whatever the time is when they are replayed.

Every run here waits durably (an hour of a virtual clock), so it leaves memory and is
replayed from its journal when the hour has passed. Each document decides something with
jq's ``now`` before the wait: ``now < T`` holds at the first execution and no longer
holds at the replay, so a run that evaluated it again would take another path there.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlparse, urlunparse

import psycopg
import pytest

import legato
from legato.blueprint import load_blueprint
from legato.blueprint.registry import publish_loaded
from legato.cli.history import export_history
from legato.testing import VirtualClock, replay
from tests.helpers import run, running_worker, status_is, wait_until

START = 1_700_000_000.0  # the workflow clock at the first execution (the host's is later)
T = START + 60  # the DEADLINE of the documents: now < T at the first execution only
WAIT = "  - pause: {wait: {hours: 1}}\n"

CASES: dict[str, tuple[str, Any, str, list[str]]] = {
    # case: (the document's use and do, its output, the decision, what it journals)
    "if": (
        """
do:
  - early:
      if: '${ now < DEADLINE }'
      set: {early: true}
"""
        + WAIT,
        {"early": True},
        "/do/0/early#if",
        ["true"],
    ),
    "for.in": (
        """
do:
  - collect:
      for: {each: x, in: '${ if now < DEADLINE then [1, 2, 3] else [] end }'}
      do:
        - add: {set: '${ {seen: ((.seen // []) + [$x])} }'}
"""
        + WAIT,
        {"seen": [1, 2, 3]},
        "/do/0/collect#for.in",
        ["[1, 2, 3]"],
    ),
    "while": (
        """
do:
  - collect:
      for: {each: x, in: '${ [1, 2] }'}
      while: '${ now < DEADLINE }'
      do:
        - add: {set: '${ {seen: ((.seen // []) + [$x])} }'}
"""
        + WAIT,
        {"seen": [1, 2]},
        "/do/0/collect#while",
        ["true", "true"],  # one for each item
    ),
    "switch": (
        """
do:
  - route:
      switch:
        - early: {when: '${ now < DEADLINE }', then: markEarly}
        - late: {then: markLate}
  - markLate: {set: {at: late}, then: pause}
  - markEarly: {set: {at: early}}
"""
        + WAIT,
        {"at": "early"},
        "/do/0/route#switch",
        ['"early"'],
    ),
    "catch.when": (
        """
do:
  - guarded:
      try:
        - fail:
            raise:
              error: {type: 'https://example.com/errors/boom', status: 500, title: boom}
      catch:
        when: '${ now < DEADLINE }'
        do:
          - recover: {set: {recovered: true}}
"""
        + WAIT,
        {"recovered": True},
        "/do/0/guarded#catch",
        ["true"],
    ),
    "retry.when": (
        """
do:
  - guarded:
      try:
        - flaky:
            raise:
              error: {type: 'https://example.com/errors/flaky', status: 503, title: flaky}
      catch:
        retry:
          when: '${ now < DEADLINE }'
          limit: {attempt: {count: 1}}
        do:
          - recover: {set: {recovered: true}}
"""
        + WAIT,
        {"recovered": True},
        "/do/0/guarded#retry",
        ["true"],  # the second failure is past the limit: no expression to decide
    ),
    "extension.when": (
        """
use:
  extensions:
    - stamp:
        extend: set
        when: '${ now < DEADLINE }'
        after:
          - mark: {set: '${ . + {extended: true} }'}
do:
  - first: {set: {n: 1}}
"""
        + WAIT,
        {"n": 1, "extended": True},
        "/do/0/first#extensions/0/stamp",
        ["true"],
    ),
}


def document(name: str, body: str) -> Any:
    head = f"document: {{dsl: '1.0.3', namespace: tests, name: {name}, version: '1.0.0'}}\n"
    return load_blueprint(head + body.replace("DEADLINE", str(T)), f"{name}.yaml")


async def wait_out_the_hour(
    db_url: str, doc: Any, value: Any = None
) -> tuple[legato.RunRecord, list[legato.JournalEntry], str]:
    """Start ``doc``, let it wait, move the clock two hours on; the ended run, its journal,
    and the problem an offline replay of its history found (None: it replays)."""
    clock = VirtualClock(start=START)
    async with running_worker(db_url, clock=clock) as (_worker, client):
        handle = await client.start_blueprint(doc, value)
        await wait_until(status_is(client, handle.run_id, legato.RunStatus.WAITING))
        clock.advance(7200)  # the replay that resumes the run sees START + 2 h
        record = await client.wait(handle.run_id, timeout=60)
        history = await export_history(client, handle.run_id)
        report = await asyncio.to_thread(replay, history)  # it runs a loop of its own
        return record, await client.journal(handle.run_id), report.problem or ""


@pytest.mark.parametrize("case", list(CASES))
def test_a_decision_made_with_now_is_kept_on_replay(db_url: str, case: str) -> None:
    body, expected, decision, outputs = CASES[case]
    doc = document(f"decides-{case.replace('.', '-')}", body)

    async def run_body() -> None:
        record, journal, problem = await wait_out_the_hour(db_url, doc)
        assert record.status is legato.RunStatus.COMPLETED, record.error
        assert json.loads(record.output or "null") == expected
        decisions = [e for e in journal if e.kind is legato.EntryKind.DECISION]
        assert [e.output for e in decisions if e.name == decision] == outputs
        assert not [e for e in journal if e.kind is legato.EntryKind.NOW and "#" in e.name], (
            "a now inside a decision is not journalled apart from it"
        )
        assert problem == ""

    run(run_body)


def test_now_reads_the_recorded_workflow_time(db_url: str) -> None:
    doc = document(
        "recorded-now",
        """
do:
  - stamp:
      set: {inStep: '${ now }'}
      output: {as: '${ . + {outside: now} }'}
"""
        + WAIT
        + """
  - done:
      set: '${ . + {after: now} }'
""",
    )

    async def body() -> None:
        record, journal, problem = await wait_out_the_hour(db_url, doc)
        assert record.status is legato.RunStatus.COMPLETED, record.error
        # Before the wait: the workflow clock, not the host's, also on the replay after
        # it (which evaluates output.as again, two hours later). After it: the new time.
        assert json.loads(record.output or "null") == {
            "inStep": START,
            "outside": START,
            "after": START + 7200,
        }
        stamps = [e.name for e in journal if e.kind is legato.EntryKind.NOW]
        assert stamps.count("/do/0/stamp#now") == 1  # output.as; the set is in its step
        assert problem == ""

    run(body)


# -- the non-determinism message -------------------------------------------------------------
EDITED = """
document: {dsl: '1.0.3', namespace: tests, name: edited, version: '1.0.0'}
do:
  - first: {set: {a: 1}}
  - second: {set: {b: 2}}
  - pause: {wait: {hours: 1}}
  - third: {set: {c: 3}}
"""
EDITS = {
    # how the stored document is changed: (old text, new text, the task the message names,
    # the run's output once reset to where the journal and the document part)
    "a task replaced": (
        "  - second: {set: {b: 2}}",
        "  - other: {set: {b: 2}}",
        "/do/1/other",
        {"c": 3},
    ),
    "the rest removed": (EDITED[EDITED.index("  - second") :], "", "/do/1/second", {"a": 1}),
}


def rewrite_run_input(db_url: str, run_id: str, text: str) -> None:
    """Change a run's stored input behind Legato's back (what an edited document does)."""
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            conn.execute("UPDATE runs SET input = ? WHERE run_id = ?", (text, run_id))
        return
    parsed = urlparse(db_url)
    query = dict(parse_qsl(parsed.query))
    schema = query.pop("schema")
    conninfo = urlunparse(parsed._replace(query=urlencode(query)))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{schema}".runs SET input = %s WHERE run_id = %s',  # type: ignore[arg-type]
            (text, run_id),
        )


def moved_on(client: legato.AsyncClient, run_id: str) -> Any:
    """A predicate for wait_until: the run waits again or has completed."""

    async def check() -> bool:
        status = (await client.get(run_id)).status
        return status in (legato.RunStatus.WAITING, legato.RunStatus.COMPLETED)

    return check


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_document_changed_under_its_run_parks_it_with_a_blueprint_message(
    db_url: str, edit: str
) -> None:
    old, new, pointer, output = EDITS[edit]
    doc = load_blueprint(EDITED, "edited.yaml")
    clock = VirtualClock(start=START)

    async def body() -> None:
        async with running_worker(db_url, clock=clock) as (_worker, client):
            await publish_loaded(client.store, doc)
            handle = await client.start_blueprint("tests/edited:1.0.0")
            await wait_until(status_is(client, handle.run_id, legato.RunStatus.WAITING))
            stored = (await client.get(handle.run_id)).input
        payload = json.loads(stored or "null")
        source = payload[0][0]["source"]
        assert old in source
        payload[0][0]["source"] = source.replace(old, new)
        rewrite_run_input(db_url, handle.run_id, json.dumps(payload))
        clock.advance(7200)
        async with running_worker(db_url, clock=clock) as (_worker, client):
            record = await client.wait(handle.run_id, timeout=60)
            assert record.status is legato.RunStatus.PARKED, record.error
            error = record.error_dict()
            assert error is not None and error["type"] == "NonDeterminismError"
            # The offline replay check (legato replay) says the same of the same history.
            report = await asyncio.to_thread(replay, await export_history(client, record.run_id))
            for message in (error["message"], report.problem or ""):
                assert "blueprint tests/edited version 1.0.0" in message
                assert pointer in message
                assert "publish the change as a new version" in message
                assert "legato.patched" not in message and ".py" not in message
            # What the message advises works: reset to the position it names.
            reset = f"legato runs reset {record.run_id} --to-step 3"
            assert reset in error["message"]
            await client.reset(record.run_id, "3")
            await wait_until(moved_on(client, record.run_id))
            clock.advance(7200)  # the edited document may wait again
            record = await client.wait(record.run_id, timeout=60)
            assert record.status is legato.RunStatus.COMPLETED, record.error
            assert json.loads(record.output or "null") == output

    run(body)
