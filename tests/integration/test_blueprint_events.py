"""Listen strategies (one, all, any with until, correlation, foreach) and cataloged functions."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import legato
from legato.blueprint import load_blueprint
from tests.helpers import run, running_worker, wait_until

HEAD = "document: {{dsl: '1.0.3', namespace: tests, name: {name}, version: '1.0.0'}}\n"


def blueprint(name: str, body: str) -> Any:
    return load_blueprint(HEAD.format(name=name) + body, f"{name}.yaml")


def output(record: legato.RunRecord) -> Any:
    assert record.status is legato.RunStatus.COMPLETED, record.error
    return json.loads(record.output or "null")


async def listening(worker: legato.Worker, run_id: str) -> bool:
    return run_id in await worker.store.listening_runs()


def test_all_waits_for_each_filter_and_correlates(db_url: str) -> None:
    doc = blueprint(
        "vitals",
        """
do:
  - watch:
      listen:
        to:
          all:
            - with: {type: com.example.temperature, data: '${ .value > 38 }'}
              correlate:
                patient: {from: .data.patient, expect: '${ .patient }'}
            - with: {type: com.example.pulse}
              correlate:
                patient: {from: .data.patient, expect: '${ .patient }'}
        read: envelope
      output:
        as: '[.[] | .type]'
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(doc, {"patient": "p-7"})
            await wait_until(lambda: listening(worker, handle.run_id))
            emit = client.emit_event
            await emit("com.example.temperature", "ward", {"patient": "p-7", "value": 37})
            await emit("com.example.pulse", "ward", {"patient": "p-9"})  # another patient
            await emit("com.example.pulse", "ward", {"patient": "p-7"})
            await emit("com.example.temperature", "ward", {"patient": "p-7", "value": 39})
            record = await client.wait(handle.run_id, timeout=30)
            assert output(record) == ["com.example.pulse", "com.example.temperature"]
            assert not await listening(worker, handle.run_id)

    run(body)


def test_any_until_consumes_and_runs_foreach_per_event(db_url: str) -> None:
    doc = blueprint(
        "readings",
        """
do:
  - collect:
      listen:
        to:
          any:
            - with: {type: com.example.reading}
          until:
            one:
              with: {type: com.example.done}
      foreach:
        item: reading
        at: position
        do:
          - scale:
              set: {value: '${ $reading.value * 10 }', at: '${ $position }'}
  - summary:
      set: {total: '${ map(.value) | add }', count: '${ length }'}
""",
    )
    first_match = blueprint(
        "first-match",
        """
do:
  - any:
      listen:
        to:
          any:
            - with: {type: 'com\\.example\\.(alpha|beta)'}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(doc)
            await wait_until(lambda: listening(worker, handle.run_id))
            for value in (1, 2, 3):
                await client.emit_event("com.example.reading", "meter", {"value": value})
            await client.emit_event("com.example.done", "meter")
            record = await client.wait(handle.run_id, timeout=30)
            assert output(record) == {"total": 60, "count": 3}

            other = await client.start_blueprint(first_match)
            await client.emit_event("com.example.gamma", "x", {"n": 0})
            await client.emit_event("com.example.beta", "x", {"n": 1})
            assert output(await client.wait(other.run_id, timeout=30)) == [{"n": 1}]

    run(body)


class _Catalog(BaseHTTPRequestHandler):
    """Serves one function definition, as a catalog lays it out."""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/catalog/functions/double/1.0.0/function.yaml":
            body = b"set:\n  doubled: '${ .value * 2 }'\n"
            self.send_response(200)
        else:
            body = b"not here"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def catalog() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Catalog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/catalog"
    server.shutdown()
    server.server_close()


def test_cataloged_functions_by_reference_and_by_url(db_url: str, catalog: str) -> None:
    doc = blueprint(
        "cataloged",
        f"""
use:
  catalogs:
    shared:
      endpoint: {catalog}
do:
  - byName:
      call: double:1.0.0@shared
      with: {{value: 21}}
  - byUrl:
      call: {catalog}/functions/double/1.0.0/function.yaml
      with: {{value: '${{ .doubled }}'}}
  - missing:
      try:
        - absent:
            call: triple:1.0.0@shared
            with: {{value: 1}}
      catch:
        as: failure
        do:
          - note: {{set: {{first: 84, missing: '${{ $failure.status }}'}}}}
""",
    )

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(doc)
            record = await client.wait(handle.run_id, timeout=30)
            assert output(record) == {"first": 84, "missing": 404}
            names = [e.name for e in await client.journal(handle.run_id)]
            assert "/do/0/byName#definition" in names and "/do/1/byUrl#definition" in names

    run(body)
