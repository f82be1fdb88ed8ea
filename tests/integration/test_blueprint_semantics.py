"""Blueprint semantics that a replay must reproduce, and the edges of fork, listen and run.

Each run here is checked twice: its outcome, and that its exported history replays on
the same code without non-determinism (what a worker does after a crash or eviction).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import legato
from legato.blueprint import load_blueprint
from legato.cli.history import export_history
from legato.testing import replay
from tests.helpers import live_processes_mentioning, run, running_worker, wait_until
from tests.servers import LocalServer

HEAD = "document: {{dsl: '1.0.3', namespace: tests, name: {name}, version: '1.0.0'}}\n"


def blueprint(name: str, body: str) -> Any:
    return load_blueprint(HEAD.format(name=name) + body, f"{name}.yaml")


async def run_and_replay(
    client: legato.AsyncClient, doc: Any, value: Any = None
) -> tuple[legato.RunRecord, list[legato.JournalEntry]]:
    handle = await client.start_blueprint(doc, value)
    record = await client.wait(handle.run_id, timeout=60)
    history = await export_history(client, handle.run_id)
    report = await asyncio.to_thread(replay, history)  # it runs a loop of its own
    assert report.ok, report.problem
    return record, await client.journal(handle.run_id)


def output(record: legato.RunRecord) -> Any:
    assert record.status is legato.RunStatus.COMPLETED, record.error
    return json.loads(record.output or "null")


def test_a_race_of_waiting_branches_leaves_memory_and_keeps_its_winner(db_url: str) -> None:
    doc = blueprint(
        "race-of-waits",
        """
do:
  - race:
      fork:
        compete: true
        branches:
          - slow: {wait: {seconds: 5}}
          - quick:
              do:
                - nap: {wait: {milliseconds: 300}}
                - won: {set: {winner: quick}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record, journal = await run_and_replay(client, doc)
            assert output(record) == {"winner": "quick"}
            decisions = [e for e in journal if e.kind is legato.EntryKind.DECISION]
            assert [(e.name, e.output) for e in decisions] == [("/do/0/race/fork", "1")]

    run(body)


def test_fork_exports_merge_in_branch_order_whatever_finishes_first(db_url: str) -> None:
    doc = blueprint(
        "fork-exports",
        """
do:
  - both:
      fork:
        branches:
          - late:
              do:
                - nap: {wait: {milliseconds: 300}}
                - mark: {set: {who: late}, export: {as: '${ {who: .who} }'}}
          - early:
              set: {who: early}
              export: {as: '${ {who: .who} }'}
  - route:
      switch:
        - wasLate: {when: '${ $context.who == "late" }', then: lateWins}
        - other: {then: earlyWins}
  - lateWins: {set: {path: late}, then: end}
  - earlyWins: {set: {path: early}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record, _journal = await run_and_replay(client, doc)
            assert output(record) == {"path": "early"}  # the last branch in order wins

    run(body)


def test_a_failed_branch_stops_its_siblings(db_url: str) -> None:
    with LocalServer() as server:
        doc = blueprint(
            "fork-failure",
            f"""
do:
  - guarded:
      try:
        - both:
            fork:
              branches:
                - slow:
                    do:
                      - nap: {{wait: {{milliseconds: 400}}}}
                      - charge:
                          call: http
                          with: {{method: post, endpoint: "{server.url}/anything/charge"}}
                - bad:
                    raise:
                      error: {{type: https://example.com/broken, status: 500}}
      catch:
        do:
          - handled: {{set: {{handled: true}}}}
  - settle: {{wait: {{milliseconds: 800}}}}
""",
        )

        async def body() -> None:
            async with running_worker(db_url) as (_worker, client):
                record, _journal = await run_and_replay(client, doc)
                assert output(record) == {"handled": True}
            assert server.hits["/anything/charge"] == 0

        run(body)


def test_an_ended_listener_does_not_break_emitters_and_events_are_consumed_once(
    db_url: str,
) -> None:
    waits = blueprint(
        "listen-twice",
        """
do:
  - announce:
      emit:
        event:
          with: {source: tests, type: com.example.once, data: {n: 1}}
  - first:
      listen: {to: {one: {with: {type: com.example.once}}}}
  - second:
      timeout: {after: PT0.5S}
      listen: {to: {one: {with: {type: com.example.once}}}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(waits)
            record = await client.wait(handle.run_id, timeout=30)
            error = json.loads(record.error or "{}")
            assert error["problem"]["status"] == 408  # the event was not taken twice
            assert error["problem"]["instance"] == "/do/2/second"
            assert handle.run_id not in await worker.store.listening_runs()
            sent = await client.emit_event("com.example.later", "tests", {"ok": True})
            assert sent["specversion"] == "1.0"

    run(body)


def test_extensions_do_not_extend_their_own_tasks(db_url: str) -> None:
    doc = blueprint(
        "extend-all",
        """
use:
  extensions:
    - stamp:
        extend: all
        after:
          - mark:
              set: '${ . + {stamped: true} }'
do:
  - work: {set: {x: 1}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record, _journal = await run_and_replay(client, doc)
            assert output(record) == {"x": 1, "stamped": True}

    run(body)


def test_expressions_cannot_read_the_worker_environment_and_secrets_are_masked(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_SECRET_TESTS__APIKEY", "s3cr3t-value")  # the namespace's own
    monkeypatch.setenv("LEGATO_SECRET_OTHER", "not-yours")
    with LocalServer() as server:
        doc = blueprint(
            "secrets",
            f"""
use:
  secrets: [apiKey]
do:
  - call:
      call: http
      with:
        method: get
        endpoint: "{server.url}/anything/secret"
        headers: {{X-Api-Key: '${{ $secrets.apiKey }}'}}
      output:
        as: .headers["X-Api-Key"]
  - peek:
      set:
        sent: '${{ . }}'
        other: '${{ $ENV.LEGATO_SECRET_OTHER }}'
        env: '${{ env.LEGATO_SECRET_OTHER }}'
""",
        )

        async def body() -> None:
            async with running_worker(db_url) as (_worker, client):
                record, journal = await run_and_replay(client, doc)
                assert output(record) == {"sent": "s3cr3t-value", "other": None, "env": None}
                call = next(e for e in journal if e.name == "/do/0/call")
                assert "s3cr3t-value" not in (call.input or "")
                assert "***" in (call.input or "")

        run(body)


def test_context_is_fresh_inside_a_task_and_its_loop(db_url: str) -> None:
    doc = blueprint(
        "fresh-context",
        """
do:
  - count:
      for: {each: i, in: '[1, 2, 3, 4, 5]'}
      while: '${ ($context.n // 0) < 2 }'
      do:
        - bump:
            set: {n: '${ ($context.n // 0) + 1 }'}
            export: {as: '${ {n: .n} }'}
  - outer:
      do:
        - inner: {set: {a: 1}, export: {as: '${ $context + {a: 1} }'}}
      export: {as: '${ $context + {b: 2} }'}
  - show: {set: {context: '${ $context }'}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record, _journal = await run_and_replay(client, doc)
            assert output(record) == {"context": {"n": 2, "a": 1, "b": 2}}

    run(body)


def test_bad_values_at_run_time_are_catchable_dsl_errors(db_url: str) -> None:
    doc = blueprint(
        "bad-values",
        """
do:
  - guarded:
      try:
        - nap: {wait: '${ .duration }'}
      catch:
        as: failure
        do:
          - report: {set: {status: '${ $failure.status }', total: '${ 1 + 1 # two }'}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record, _journal = await run_and_replay(client, doc, {"duration": "5 seconds"})
            assert output(record) == {"status": 400, "total": 2}

    run(body)


def test_a_timeout_bounds_a_child_run_and_kills_a_shell_process(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from legato.blueprint.registry import publish, publish_loaded

    marker = tmp_path / "marker"
    child = """
document: {dsl: '1.0.3', namespace: tests, name: slow-child, version: '1.0.0'}
do:
  - nap: {wait: PT5S}
"""
    parent = blueprint(
        "bounded",
        f"""
do:
  - child:
      try:
        - sub:
            timeout: {{after: PT0.5S}}
            run: {{workflow: {{namespace: tests, name: slow-child, version: '1.0.0'}}}}
      catch:
        errors: {{with: {{status: 408}}}}
        do:
          - note: {{set: {{child: timed-out}}}}
  - shell:
      try:
        - sleepy:
            timeout: {{after: PT0.5S}}
            run: {{shell: {{command: 'sleep 2; touch {marker}'}}}}
      catch:
        errors: {{with: {{status: 408}}}}
        do:
          - note: {{set: {{shell: timed-out}}}}
""",
    )
    monkeypatch.setenv("LEGATO_BLUEPRINT_PROCESSES", "tests/bounded")

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            await publish(worker.store, child, "slow-child.yaml")
            await publish_loaded(worker.store, parent)
            record, journal = await run_and_replay(client, parent)
            assert output(record) == {"shell": "timed-out"}
            names = [e.name for e in journal]
            assert "/do/0/child/catch/do/0/note" in names  # the child run timed out
            # Once no process names the marker, nothing can create it any more.
            await wait_until(
                lambda: not live_processes_mentioning(str(marker)), 30, "the shell is gone"
            )
        assert not marker.exists()  # the shell was killed at its timeout

    run(body)
