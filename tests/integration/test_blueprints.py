"""Blueprint runs on the durable runtime, on SQLite and PostgreSQL.

Each test starts a draft blueprint (a document loaded in the test) with a worker in the
same event loop, then checks the run's outcome and its journal. External calls go to a
real HTTP server on 127.0.0.1 that counts requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import legato
from legato.blueprint import load_blueprint
from tests.helpers import live_processes_mentioning, run, running_worker, wait_until
from tests.servers import LocalServer

HEAD = "document: {{dsl: '1.0.3', namespace: tests, name: {name}, version: '1.0.0'}}\n"


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as local:
        yield local


def blueprint(name: str, body: str) -> Any:
    return load_blueprint(HEAD.format(name=name) + body, f"{name}.yaml")


async def finish(
    client: legato.AsyncClient, doc: Any, value: Any = None, timeout: float = 30
) -> legato.RunRecord:
    handle = await client.start_blueprint(doc, value)
    return await client.wait(handle.run_id, timeout=timeout)


def output(record: legato.RunRecord) -> Any:
    assert record.status is legato.RunStatus.COMPLETED, record.error
    return json.loads(record.output or "null")


def problem(record: legato.RunRecord) -> dict[str, Any]:
    assert record.status is legato.RunStatus.FAILED
    found: dict[str, Any] = json.loads(record.error or "{}")["problem"]
    return found


def test_data_flow_loops_switch_and_context(db_url: str) -> None:
    doc = blueprint(
        "flow",
        """
input:
  from: .order
do:
  - total:
      for: {each: line, in: .lines, at: i}
      while: '${ $i < 3 }'
      do:
        - add:
            set:
              lines: ${ $input.lines }
              sum: ${ (.sum // 0) + $line.price * $line.qty }
      export:
        as: '${ {sum: .sum} }'
  - decide:
      switch:
        - big: {when: .sum > 100, then: approve}
        - small: {then: reject}
  - reject:
      set: {verdict: rejected, sum: '${ $context.sum }'}
      then: end
  - approve:
      set: {verdict: approved, sum: '${ $context.sum }'}
output:
  as: '${ .verdict + ":" + (.sum | tostring) }'
""",
    )
    lines = [{"price": 10, "qty": 5}, {"price": 30, "qty": 2}, {"price": 7, "qty": 1}]
    lines.append({"price": 1000, "qty": 1})  # the while stops before the fourth line

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record = await finish(client, doc, {"order": {"lines": lines}})
            assert output(record) == "approved:117"
            journal = await client.journal(record.run_id)
            names = [e.name for e in journal if e.name]
            assert names[-2:] == ["/do/1/decide#switch", "/do/3/approve"]
            assert "/do/2/reject" not in names
            decisions = [(e.name, e.output) for e in journal if e.kind is legato.EntryKind.DECISION]
            assert decisions[0] == ("/do/0/total#for.in", json.dumps(lines))
            whiles = [output for name, output in decisions if name == "/do/0/total#while"]
            assert whiles == ["true", "true", "true", "false"]  # one per item it looked at
            assert decisions[-1] == ("/do/1/decide#switch", '"big"')

    run(body)


def test_try_retries_with_backoff_then_catches(db_url: str, server: LocalServer) -> None:
    doc = blueprint(
        "retry",
        f"""
do:
  - guarded:
      try:
        - flaky:
            call: http
            with: {{method: get, endpoint: "{server.url}/status/503"}}
      catch:
        errors:
          with: {{type: https://serverlessworkflow.io/spec/1.0.0/errors/communication}}
        as: failure
        retry:
          delay: {{milliseconds: 50}}
          backoff: {{exponential: {{}}}}
          limit: {{attempt: {{count: 2}}}}
        do:
          - fallback:
              set: {{status: '${{ $failure.status }}', handled: true}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record = await finish(client, doc)
            assert output(record) == {"status": 503, "handled": True}
            assert server.hits["/status/503"] == 3  # the first call and two retries
            journal = await client.journal(record.run_id)
            sleeps = [e for e in journal if e.kind is legato.EntryKind.SLEEP]
            assert len(sleeps) == 2  # durable back-off between attempts

    run(body)


def test_uncaught_raise_fails_the_run_with_its_problem(db_url: str) -> None:
    doc = blueprint(
        "raising",
        """
use:
  errors:
    notAllowed:
      type: https://example.com/errors/not-allowed
      status: 403
      title: Not allowed
do:
  - check:
      do:
        - deny:
            raise:
              error: notAllowed
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            record = await finish(client, doc)
            assert problem(record) == {
                "type": "https://example.com/errors/not-allowed",
                "status": 403,
                "title": "Not allowed",
                "instance": "/do/0/check/do/0/deny",
            }

    run(body)


def test_fork_gathers_branches_and_compete_keeps_one(db_url: str) -> None:
    both = blueprint(
        "forked",
        """
do:
  - together:
      fork:
        branches:
          - a: {set: {v: 1}}
          - b: {set: {v: 2}}
""",
    )
    race = blueprint(
        "race",
        """
do:
  - first:
      fork:
        compete: true
        branches:
          - slow: {wait: PT5S}
          - quick: {set: {winner: quick}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            assert output(await finish(client, both)) == [{"v": 1}, {"v": 2}]
            assert output(await finish(client, race)) == {"winner": "quick"}

    run(body)


def test_task_timeout_is_a_catchable_timeout_error(db_url: str) -> None:
    doc = blueprint(
        "timeouts",
        """
do:
  - guarded:
      try:
        - slow:
            wait: PT30S
            timeout: {after: PT0.3S}
      catch:
        errors: {with: {status: 408}}
        do:
          - note: {set: {timedOut: true}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            assert output(await finish(client, doc)) == {"timedOut": True}

    run(body)


@legato.blueprint.function("tests.price")
def price(sku: str, qty: int) -> dict[str, Any]:
    return {"sku": sku, "total": qty * 12}


def test_python_function_and_the_wait_signal_kind(db_url: str) -> None:
    doc = blueprint(
        "approvals",
        """
do:
  - quote:
      call: tests.price
      with: {sku: '${ .sku }', qty: 3}
  - approval:
      call: legato:wait-signal
      with: {signal: approve, timeout: PT1H}
      output:
        as: '${ {total: $input.total, by: .by} }'
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(doc, {"sku": "A-1"})
            await wait_until(lambda: _status_is(client, handle.run_id, legato.RunStatus.WAITING))
            await client.signal(handle.run_id, "approve", {"by": "dana"})
            record = await client.wait(handle.run_id, timeout=30)
            assert output(record) == {"total": 36, "by": "dana"}

    run(body)


async def _status_is(client: legato.AsyncClient, run_id: str, status: legato.RunStatus) -> bool:
    return (await client.get(run_id)).status is status


def test_listen_takes_an_event_emitted_before_it_started(db_url: str) -> None:
    listener = blueprint(
        "listener",
        """
do:
  - settle:
      wait: PT0.5S
  - awaitPayment:
      listen:
        to:
          one:
            with:
              type: com.example.payment.received
              data: ${ .amount > 10 }
      output:
        as: .[0]
""",
    )
    emitter = blueprint(
        "emitter",
        """
do:
  - announce:
      emit:
        event:
          with:
            source: https://example.com/payments
            type: com.example.payment.received
            data: {amount: '${ .amount }'}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(listener)
            await client.emit_event("com.example.payment.received", "tests", {"amount": 5})
            sent = output(await finish(client, emitter, {"amount": 42}))
            assert sent["type"] == "com.example.payment.received" and sent["specversion"] == "1.0"
            record = await client.wait(handle.run_id, timeout=30)
            assert output(record) == {"amount": 42}  # the 5 did not pass the filter

    run(body)


def test_shell_needs_the_allow_list(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = blueprint(
        "shell",
        """
do:
  - greet:
      run:
        shell:
          command: 'echo "hello $1"'
          arguments: [legato]
""",
    )

    async def body() -> None:
        from legato.blueprint.registry import publish_loaded

        async with running_worker(db_url) as (worker, client):
            refused = problem(await finish(client, doc))
            assert refused["status"] == 403 and "LEGATO_BLUEPRINT_PROCESSES" in refused["detail"]
            monkeypatch.setenv("LEGATO_BLUEPRINT_PROCESSES", "tests/sh*")
            draft = problem(await finish(client, doc))  # allowed by name, but not published
            assert draft["status"] == 403 and "published" in draft["detail"]
            await publish_loaded(worker.store, doc)
            assert output(await finish(client, doc)) == "hello legato\n"

    run(body)


def touching(kind: str, marker: Path) -> str:
    """A ``run`` task body whose only effect is to create the file ``marker``."""
    if kind == "shell":
        return f"shell:\n          command: 'touch {marker}'"
    code = f"import pathlib; pathlib.Path('{marker}').touch()"
    return f'script:\n          language: python\n          code: "{code}"'


@pytest.mark.parametrize("kind", ["shell", "script"])
def test_a_draft_is_refused_before_its_command_is_spawned(
    db_url: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An allowed namespace is not enough: a draft's command must not run at all, not
    merely have its result refused once it has run."""
    marker = tmp_path / "MARKER"
    doc = blueprint(
        f"draft-{kind}", f"do:\n  - touch:\n      run:\n        {touching(kind, marker)}\n"
    )
    monkeypatch.setenv("LEGATO_BLUEPRINT_PROCESSES", "tests/draft-*")

    async def body() -> None:
        from legato.blueprint.registry import publish_loaded

        async with running_worker(db_url) as (worker, client):
            refused = problem(await finish(client, doc))
            assert refused["status"] == 403
            assert f"run: {kind} runs only from published blueprints" in refused["detail"]
            # A spawned command is either still running or has touched the file by now.
            await wait_until(lambda: not live_processes_mentioning(str(marker)))
            assert not marker.exists()
            await publish_loaded(worker.store, doc)  # the same task, published, does run
            assert output(await finish(client, doc)) == ""
            assert marker.exists()

    run(body)


@pytest.mark.parametrize("kind", ["shell", "script"])
def test_a_blueprint_outside_the_allow_list_spawns_nothing(
    db_url: str, kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published is not enough either: the worker must allow the blueprint's name."""
    marker = tmp_path / "MARKER"
    doc = blueprint(
        f"outside-{kind}", f"do:\n  - touch:\n      run:\n        {touching(kind, marker)}\n"
    )
    monkeypatch.setenv("LEGATO_BLUEPRINT_PROCESSES", "ops/*,tests/draft-*")

    async def body() -> None:
        from legato.blueprint.registry import publish_loaded

        async with running_worker(db_url) as (worker, client):
            await publish_loaded(worker.store, doc)
            refused = problem(await finish(client, doc))
            assert refused["status"] == 403
            assert (
                f"run: {kind} is not allowed for blueprint tests/outside-{kind}"
                in (refused["detail"])
            )
            await wait_until(lambda: not live_processes_mentioning(str(marker)))
            assert not marker.exists()

    run(body)


def test_a_replayed_run_does_not_call_again(db_url: str, server: LocalServer) -> None:
    """A run evicted during a wait resumes from its journal: earlier calls are not repeated."""
    doc = blueprint(
        "replayed",
        f"""
do:
  - one:
      call: http
      with: {{method: get, endpoint: "{server.url}/anything/one"}}
  - pause:
      wait: PT0.3S
  - two:
      call: http
      with: {{method: get, endpoint: "{server.url}/anything/two"}}
      output:
        as: .path
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            assert output(await finish(client, doc)) == "/anything/two"
        assert server.hits["/anything/one"] == 1 and server.hits["/anything/two"] == 1

    run(body)


VERSIONED = """
document: {{dsl: '1.0.3', namespace: tests, name: pinned, version: '{version}'}}
do:
  - hold:
      call: legato:wait-signal
      with: {{signal: go}}
  - stamp:
      set: {{built: '{version}'}}
"""


def test_a_run_stays_on_the_version_it_started_with(db_url: str) -> None:
    from legato.blueprint.registry import publish

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            await publish(worker.store, VERSIONED.format(version="1.0.0"), "pinned.yaml")
            old = await client.start_blueprint("tests/pinned")
            await wait_until(lambda: _status_is(client, old.run_id, legato.RunStatus.WAITING))
            await publish(worker.store, VERSIONED.format(version="1.1.0"), "pinned.yaml")
            new = await client.start_blueprint("pinned")  # the newest version
            await client.signal(old.run_id, "go")
            await client.signal(new.run_id, "go")
            first = await client.wait(old.run_id, timeout=30)
            second = await client.wait(new.run_id, timeout=30)
            assert (first.version, output(first)) == ("1.0.0", {"built": "1.0.0"})
            assert (second.version, output(second)) == ("1.1.0", {"built": "1.1.0"})
            explicit = await client.start_blueprint("tests/pinned:1.0.0")
            assert (await client.get(explicit.run_id)).version == "1.0.0"

    run(body)


def test_run_workflow_starts_a_published_blueprint_as_a_child(db_url: str) -> None:
    from legato.blueprint.registry import publish

    child = """
document: {dsl: '1.0.3', namespace: tests, name: register-customer, version: '0.1.0'}
do:
  - greet:
      set: {greeting: '${ "welcome " + .customer.name }'}
"""
    parent = blueprint(
        "onboard",
        """
do:
  - register:
      run:
        workflow:
          namespace: tests
          name: register-customer
          version: '0.1.0'
          input:
            customer: ${ .user }
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            await publish(worker.store, child, "register-customer.yaml")
            record = await finish(client, parent, {"user": {"name": "Ada"}})
            assert output(record) == {"greeting": "welcome Ada"}
            children = [e for e in await client.journal(record.run_id) if e.child_run_id]
            assert len(children) == 1
            sub = await client.get(children[0].child_run_id or "")
            assert (sub.workflow, sub.version) == ("blueprint:tests/register-customer", "0.1.0")

    run(body)
