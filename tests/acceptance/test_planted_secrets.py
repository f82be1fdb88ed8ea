"""Planted secrets: a database password and a blueprint secret, looked for everywhere.

The password is in the PostgreSQL URL every command is given; the blueprint secret is
sent by a blueprint in a request's query string, a header and a failing call's URL. The
test greps every log line, every CLI output (text and JSON), the run's journal and its
error for both: zero occurrences. (The audit trail does not exist yet.) The endpoints do
not echo the request: a response that repeats a secret is journalled as received, which
docs/blueprints.md ("Limits to know") says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.helpers import legato_cli
from tests.servers import LocalServer

PASSWORD = "pw-planted-5521"
TOKEN = "tok-planted-9034"


def test_no_planted_secret_appears_in_any_output(postgres_url: str, tmp_path: Path) -> None:
    server_url, _, schema = postgres_url.partition("?schema=")
    role = f"sec_{schema}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        # A role of its own, so that the URL carries a password (the server trusts
        # 127.0.0.1, so any password would do: what matters is where it shows).
        conn.execute(f"CREATE ROLE \"{role}\" SUPERUSER LOGIN PASSWORD '{PASSWORD}'")
    db = postgres_url.replace("postgres@", f"{role}:{PASSWORD}@", 1)
    outputs: list[str] = []
    env = {**os.environ, "LEGATO_SECRET_PLANTED__TOKEN": TOKEN, "LEGATO_DB": db}
    log = tmp_path / "worker.log"
    try:
        with LocalServer() as server:
            doc = tmp_path / "leak.yaml"
            doc.write_text(
                f"""
document: {{dsl: '1.0.3', namespace: planted, name: leak, version: '1.0.0'}}
use:
  secrets: [token]
do:
  - query:
      call: http
      with:
        method: get
        endpoint: '${{ "{server.url}/text?token=" + $secrets.token }}'
        headers: {{Authorization: '${{ "Bearer " + $secrets.token }}'}}
  - fail:
      call: http
      with:
        method: get
        endpoint: '${{ "{server.url}/status/500?token=" + $secrets.token }}'
"""
            )
            with open(log, "w") as log_file:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "legato", "worker", "--log-level", "debug"],
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            try:
                for args in (
                    ("db", "upgrade"),
                    ("blueprint", "publish", str(doc)),
                    ("blueprint", "run", "planted/leak", "--id", "leak-1", "--timeout", "120"),
                    ("runs", "show", "leak-1"),
                    ("runs", "show", "leak-1", "--json"),
                    ("runs", "list", "--json"),
                    ("workers", "list"),
                    ("health",),
                ):
                    done = subprocess.run(
                        [sys.executable, "-m", "legato", *args],
                        capture_output=True,
                        text=True,
                        env=env,
                        timeout=180,
                    )
                    outputs.append(f"$ legato {' '.join(args)}\n{done.stdout}{done.stderr}")
            finally:
                worker.terminate()
                worker.wait(60)
            assert server.hits["/text"] == 1, "\n".join(outputs)  # really sent
        for bad in (
            db.replace(f"?schema={schema}", "?schema=bad-name!"),
            f"postgresql://{role}:{PASSWORD}@[::1/x",
            db.replace("127.0.0.1:5432", "127.0.0.1:1"),
        ):
            done = legato_cli(bad, "runs", "list")
            outputs.append(f"$ legato --db <bad> runs list\n{done.stdout}{done.stderr}")
            assert done.returncode != 0
        with psycopg.connect(server_url, autocommit=True) as conn:
            stored = conn.execute(
                f'SELECT input, output, error FROM "{schema}".journal UNION ALL '
                f'SELECT input, output, error FROM "{schema}".runs'
            ).fetchall()
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
    everything = "\n".join([*outputs, log.read_text(), json.dumps(stored)])
    assert "run leak-1" in everything and "planted/leak" in everything  # it all ran
    assert "ended failed" in everything or "failed" in everything  # the failing call
    for secret in (PASSWORD, TOKEN):
        found = [line for line in everything.splitlines() if secret in line]
        assert found == [], f"{secret} leaked:\n" + "\n".join(found[:10])
