"""A blueprint run survives SIGKILL of its worker without repeating completed calls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

import legato
from legato.blueprint import load_blueprint
from tests.servers import LocalServer

pytestmark = pytest.mark.fault

DOCUMENT = """
document: {{dsl: '1.0.3', namespace: tests, name: three-calls, version: '1.0.0'}}
do:
  - reserve:
      call: http
      with: {{method: post, endpoint: "{url}/anything/reserve", body: {{sku: A-1}}}}
  - charge:
      call: http
      with: {{method: post, endpoint: "{url}/anything/charge", body: {{amount: 42}}}}
  - ship:
      call: http
      with: {{method: get, endpoint: "{url}/delay/1"}}
      output:
        as: '${{ {{shipped: true}} }}'
"""


def spawn_worker(db: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "legato", "worker"],
        env={**os.environ, "LEGATO_DB": db},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the timeout")
        time.sleep(0.01)


def test_killed_after_the_second_call_resumes_with_the_third(db_url: str) -> None:
    with LocalServer() as server, legato.Client(db_url) as client:
        doc = load_blueprint(DOCUMENT.format(url=server.url), "three-calls.yaml")
        handle = client.start_blueprint(doc, run_id="three-calls")
        first = spawn_worker(db_url)
        try:
            # The third call is in flight (the server holds it for a second): the first
            # two calls have completed and are journalled. Kill the worker now.
            wait_for(lambda: server.hits["/delay/1"] >= 1)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        finally:
            if first.poll() is None:
                first.kill()
        assert client.get(handle.run_id).status is not legato.RunStatus.COMPLETED
        assert (server.hits["/anything/reserve"], server.hits["/anything/charge"]) == (1, 1)

        second = spawn_worker(db_url)
        try:
            record = client.wait(handle.run_id, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=30)
        assert record.status is legato.RunStatus.COMPLETED, record.error
        assert json.loads(record.output or "null") == {"shipped": True}
        # The first two calls were not made again; the third ran again to completion.
        assert server.hits["/anything/reserve"] == 1
        assert server.hits["/anything/charge"] == 1
        assert server.hits["/delay/1"] == 2
