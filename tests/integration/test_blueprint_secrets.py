"""A blueprint reads only the secrets granted to its namespace.

Before, any document could read any ``LEGATO_SECRET_*`` the worker held by naming it
under ``use.secrets``. Now a namespace reads its own secrets (``LEGATO_SECRET_<NS>__<NAME>``)
and the shared ones granted to it (``LEGATO_SECRET_<NAME>_NAMESPACES``).
"""

from __future__ import annotations

import json

import pytest

import legato
from legato.blueprint import load_blueprint
from legato.errors import BlueprintInvalid
from tests.helpers import run, running_worker

SECRET = "planted-secret-7781"


def reader(namespace: str) -> str:
    return f"""
document: {{dsl: '1.0.3', namespace: {namespace}, name: reader, version: '1.0.0'}}
use:
  secrets: [payroll]
do:
  - peek:
      set:
        got: '${{ $secrets.payroll }}'
"""


def test_a_shared_secret_not_granted_fails_validation_where_it_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEGATO_SECRET_PAYROLL", SECRET)
    with pytest.raises(BlueprintInvalid) as caught:
        load_blueprint(reader("marketing"))
    text = str(caught.value)
    assert "secret 'payroll' is not granted to namespace 'marketing'" in text
    assert "LEGATO_SECRET_PAYROLL_NAMESPACES" in text
    assert SECRET not in text


@pytest.mark.parametrize("grant", ["finance", "ops, finance", "*"])
def test_a_granted_shared_secret_validates(grant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEGATO_SECRET_PAYROLL", SECRET)
    monkeypatch.setenv("LEGATO_SECRET_PAYROLL_NAMESPACES", grant)
    assert load_blueprint(reader("finance")).namespace == "finance"


def test_a_run_of_a_namespace_without_the_grant_fails_and_reads_nothing(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validated where the secret is not set (a laptop), run where it is (the worker)."""
    doc = load_blueprint(reader("marketing"))
    monkeypatch.setenv("LEGATO_SECRET_PAYROLL", SECRET)
    monkeypatch.setenv("LEGATO_SECRET_PAYROLL_NAMESPACES", "finance")

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(doc, None)
            record = await client.wait(handle.run_id, timeout=60)
            assert record.status is legato.RunStatus.FAILED
            assert "not granted to namespace 'marketing'" in (record.error or "")
            journal = await client.journal(handle.run_id)
            stored = json.dumps([record.output, record.error, [e.output for e in journal]])
            assert SECRET not in stored  # the value never reached the run
            assert not any(e.name == "/do/0/peek" for e in journal)  # no task ran

    run(body)


def test_own_and_granted_secrets_are_read_and_own_wins(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGATO_SECRET_PAYROLL", "shared-value")
    monkeypatch.setenv("LEGATO_SECRET_PAYROLL_NAMESPACES", "finance,hr")
    monkeypatch.setenv("LEGATO_SECRET_HR__PAYROLL", "hr-own-value")

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            for namespace, expected in (("finance", "shared-value"), ("hr", "hr-own-value")):
                handle = await client.start_blueprint(load_blueprint(reader(namespace)), None)
                record = await client.wait(handle.run_id, timeout=60)
                assert record.status is legato.RunStatus.COMPLETED, record.error
                assert json.loads(record.output or "null") == {"got": expected}

    run(body)
