"""The example blueprints in examples/blueprints, run end to end on SQLite and PostgreSQL.

A small accounting-and-partner API runs on 127.0.0.1 inside the test: purchase orders to
fetch, an invoice endpoint that records what was booked, and a partner endpoint that
answers 503 a set number of times before it accepts. The worker runs in the test's event
loop with the example's Python functions imported, as ``legato worker --app`` would.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import pytest

import legato
from legato.blueprint import Blueprint, load_blueprint, load_blueprint_file
from tests.helpers import legato_cli, run, running_worker, status_is, wait_until

EXAMPLES = Path(__file__).parents[2] / "examples" / "blueprints"
INVOICE_PIPELINE = EXAMPLES / "invoice-pipeline.yaml"
INTEGRATION = EXAMPLES / "resilient-integration.yaml"
FUNCTIONS = EXAMPLES / "invoice_functions.py"

PURCHASE_ORDERS: dict[str, dict[str, Any]] = {
    "PO-1001": {"number": "PO-1001", "vendor": "Northwind", "amount": 1250, "currency": "EUR"},
    "PO-2002": {"number": "PO-2002", "vendor": "Contoso", "amount": 18500.5, "currency": "EUR"},
}


def invoice_text(number: str, po: str, vendor: str, total: str) -> str:
    return f"INVOICE\nInvoice: {number}\nVendor: {vendor}\nPO: {po}\nTotal: {total}\n"


# -- the local API ---------------------------------------------------------------------------


class PartnerApi:
    """Accounting (purchase orders, invoices) and a flaky partner, on a free local port."""

    def __init__(self, partner_failures: int = 0, partner_status: int = 503) -> None:
        self.partner_failures = partner_failures
        self.partner_status = partner_status
        self.hits: Counter[str] = Counter()
        self.booked: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.api = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> PartnerApi:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        api: PartnerApi = self.server.api  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        body: Any = json.loads(self.rfile.read(length)) if length else None
        with api.lock:
            api.hits[f"{self.command} {self.path}"] += 1
            hits = api.hits[f"{self.command} {self.path}"]
        order = re.fullmatch(r"/purchase-orders/([^/]+)", self.path)
        if self.command == "GET" and order:
            found = PURCHASE_ORDERS.get(order.group(1))
            if found is None:
                self._answer(404, {"error": f"no purchase order {order.group(1)}"})
            else:
                self._answer(200, found)
        elif self.command == "POST" and self.path == "/invoices":
            with api.lock:
                api.booked.append(body)
                booking = f"BK-{len(api.booked)}"
            self._answer(201, {"id": booking, "status": "booked"})
        elif self.command == "POST" and self.path == "/partner/orders":
            if hits <= api.partner_failures:
                self._answer(api.partner_status, {"error": "the partner is unavailable"})
            else:
                self._answer(200, {"reference": f"P-{body['id']}", "accepted": True})
        else:
            self._answer(404, {"error": f"no route for {self.command} {self.path}"})

    def _answer(self, status: int, data: Any) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def api() -> Iterator[PartnerApi]:
    with PartnerApi() as local:
        yield local


# -- the examples ----------------------------------------------------------------------------


def invoice_functions() -> ModuleType:
    """Import examples/blueprints/invoice_functions.py once, under the name the CLI uses."""
    if "invoice_functions" in sys.modules:
        return sys.modules["invoice_functions"]
    spec = importlib.util.spec_from_file_location("invoice_functions", FUNCTIONS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["invoice_functions"] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def example(path: Path) -> Blueprint:
    """An example blueprint, validated against the functions its worker registers."""
    invoice_functions()
    return load_blueprint_file(path, functions=set(legato.blueprint.functions()))


def output(record: legato.RunRecord) -> Any:
    assert record.status is legato.RunStatus.COMPLETED, record.error
    return json.loads(record.output or "null")


def problem(record: legato.RunRecord) -> dict[str, Any]:
    assert record.status is legato.RunStatus.FAILED, record.output
    found: dict[str, Any] = json.loads(record.error or "{}")["problem"]
    return found


async def events(worker: legato.Worker, type: str) -> list[dict[str, Any]]:
    return [
        e.envelope for e in await worker.store.read_events(0, 0.0) if e.envelope["type"] == type
    ]


# -- tests -----------------------------------------------------------------------------------


def test_the_examples_are_valid_blueprints() -> None:
    pipeline = example(INVOICE_PIPELINE)
    integration = example(INTEGRATION)
    assert pipeline.ref == "finance/invoice-pipeline:1.0.0"
    assert integration.ref == "integrations/resilient-integration:1.0.0"
    assert "finance.extract_invoice" in legato.blueprint.functions()
    # Without the app, plain function names are not checked: the files load all the same.
    assert load_blueprint_file(INVOICE_PIPELINE).digest == pipeline.digest


def test_the_cli_validates_the_examples_with_their_app(tmp_path: Path) -> None:
    checked = legato_cli(
        f"sqlite:///{tmp_path / 'legato.db'}",
        "blueprint",
        "validate",
        "--app",
        str(FUNCTIONS),
        str(INVOICE_PIPELINE),
        str(INTEGRATION),
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count(": ok") == 2


def test_extract_invoice_reads_the_fields_and_refuses_incomplete_text() -> None:
    extract = invoice_functions().extract_invoice
    text = "Invoice: INV-7\nSupplier: Northwind\nPO: PO-1001\nAmount: 1,250.50\nCurrency: eur"
    assert extract(text) == {
        "number": "INV-7",
        "po": "PO-1001",
        "vendor": "Northwind",
        "amount": 1250.5,
        "currency": "EUR",
    }
    with pytest.raises(ValueError, match="no po"):
        extract("Invoice: INV-8\nVendor: Northwind\nTotal: 10 EUR")


def test_a_small_invoice_is_approved_by_policy_and_booked(db_url: str, api: PartnerApi) -> None:
    from legato.blueprint.registry import publish_loaded

    text = invoice_text("INV-1", "PO-1001", "Northwind", "1,250.00 EUR")

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            await publish_loaded(worker.store, example(INVOICE_PIPELINE))
            handle = await client.start_blueprint(
                "finance/invoice-pipeline", {"api": api.url, "text": text}
            )
            record = await client.wait(handle.run_id, timeout=30)
            result = output(record)
            assert record.version == "1.0.0"
            booked = await events(worker, "com.example.invoice.booked")
            escalated = await events(worker, "com.example.invoice.approval-escalated")
        assert result == {
            "invoice": "INV-1",
            "status": "booked",
            "bookingId": "BK-1",
            "amount": 1250,
            "currency": "EUR",
            "approvedBy": "policy",
            "approval": "automatic",
            "event": booked[0]["id"],
        }
        assert api.booked == [
            {
                "number": "INV-1",
                "vendor": "Northwind",
                "purchaseOrder": "PO-1001",
                "amount": 1250,
                "currency": "EUR",
                "approvedBy": "policy",
                "approval": "automatic",
            }
        ]
        assert api.hits["GET /purchase-orders/PO-1001"] == 1
        assert len(booked) == 1 and not escalated
        assert booked[0]["source"] == "/finance/invoice-pipeline"
        assert booked[0]["subject"] == "INV-1"
        assert booked[0]["data"] == {
            "invoice": "INV-1",
            "purchaseOrder": "PO-1001",
            "amount": 1250,
            "currency": "EUR",
            "bookingId": "BK-1",
            "approvedBy": "policy",
        }

    run(body)


def test_a_large_invoice_waits_for_its_approver(db_url: str, api: PartnerApi) -> None:
    text = invoice_text("INV-2", "PO-2002", "Contoso", "18,500.50 EUR")

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(
                example(INVOICE_PIPELINE), {"api": api.url, "text": text}
            )
            await wait_until(status_is(client, handle.run_id, legato.RunStatus.WAITING))
            assert api.booked == []  # nothing is booked before the approval
            await client.signal(handle.run_id, "approve-invoice", {"by": "dana"})
            record = await client.wait(handle.run_id, timeout=30)
            booked = await events(worker, "com.example.invoice.booked")
        result = output(record)
        assert (result["approvedBy"], result["approval"], result["amount"]) == (
            "dana",
            "manual",
            18500.5,
        )
        assert [b["approvedBy"] for b in api.booked] == ["dana"]
        assert [e["data"]["invoice"] for e in booked] == ["INV-2"]

    run(body)


def test_an_unanswered_approval_escalates_then_waits_for_a_manager(
    db_url: str, api: PartnerApi
) -> None:
    """The example's two days shortened to 0.3 s: same document otherwise."""
    source = INVOICE_PIPELINE.read_text(encoding="utf-8")
    assert source.count("timeout: P2D") == 1
    hurried = load_blueprint(source.replace("timeout: P2D", "timeout: PT0.3S"), "hurried.yaml")
    text = invoice_text("INV-5", "PO-2002", "Contoso", "18,500.50 EUR")

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(hurried, {"api": api.url, "text": text})
            await wait_until(lambda: events(worker, "com.example.invoice.approval-escalated"))
            await wait_until(status_is(client, handle.run_id, legato.RunStatus.WAITING))
            await client.signal(handle.run_id, "approve-invoice", {"by": "manager"})
            record = await client.wait(handle.run_id, timeout=30)
            escalated = await events(worker, "com.example.invoice.approval-escalated")
        assert output(record)["approvedBy"] == "manager"
        assert len(escalated) == 1 and escalated[0]["subject"] == "INV-5"
        data = escalated[0]["data"]
        assert (data["invoice"], data["vendor"], data["amount"]) == ("INV-5", "Contoso", 18500.5)
        assert isinstance(data["waitingSince"], str)

    run(body)


def test_an_approver_can_refuse_a_large_invoice(db_url: str, api: PartnerApi) -> None:
    text = invoice_text("INV-3", "PO-2002", "Contoso", "18,500.50 EUR")

    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(
                example(INVOICE_PIPELINE), {"api": api.url, "text": text}
            )
            await wait_until(status_is(client, handle.run_id, legato.RunStatus.WAITING))
            refusal = {"by": "dana", "approved": False, "reason": "duplicate"}
            await client.signal(handle.run_id, "approve-invoice", refusal)
            record = await client.wait(handle.run_id, timeout=30)
        found = problem(record)
        assert found["type"] == "https://example.com/finance/errors/invoice-rejected"
        assert (found["status"], found["instance"]) == (403, "/do/7/refuseIfRejected")
        assert api.booked == []

    run(body)


def test_an_invoice_that_does_not_match_its_po_fails_with_a_typed_problem(
    db_url: str, api: PartnerApi
) -> None:
    text = invoice_text("INV-4", "PO-1001", "Northwind", "1,300.00 EUR")

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(
                example(INVOICE_PIPELINE), {"api": api.url, "text": text}
            )
            record = await client.wait(handle.run_id, timeout=30)
            booked = await events(worker, "com.example.invoice.booked")
        assert problem(record) == {
            "type": "https://example.com/finance/errors/invoice-po-mismatch",
            "status": 422,
            "title": "Invoice does not match its purchase order",
            "detail": "Invoice INV-4 asks for 1300 EUR but purchase order PO-1001 is for 1250 EUR",
            "instance": "/do/3/rejectMismatch",
        }
        assert api.booked == [] and booked == []

    run(body)


def test_the_input_schema_refuses_a_run_without_invoice_text(db_url: str, api: PartnerApi) -> None:
    async def body() -> None:
        async with running_worker(db_url) as (_worker, client):
            handle = await client.start_blueprint(example(INVOICE_PIPELINE), {"api": api.url})
            record = await client.wait(handle.run_id, timeout=30)
        found = problem(record)
        assert (found["status"], found["instance"]) == (400, "/input")
        assert "text" in found["detail"]
        assert sum(api.hits.values()) == 0

    run(body)


def hand_off(api: PartnerApi) -> dict[str, Any]:
    return {
        "partnerApi": api.url + "/partner",
        "order": {"id": "SO-77", "sku": "WIDGET-9", "quantity": 4},
    }


def test_the_integration_retries_outages_until_the_partner_accepts(
    db_url: str, api: PartnerApi
) -> None:
    api.partner_failures = 2

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(example(INTEGRATION), hand_off(api))
            record = await client.wait(handle.run_id, timeout=30)
            journal = await client.journal(record.run_id)
            accepted = await events(worker, "com.example.partner.order-accepted")
            alerts = await events(worker, "com.example.partner.handoff-failed")
        assert output(record) == {
            "order": "SO-77",
            "status": "accepted",
            "partnerReference": "P-SO-77",
        }
        assert api.hits["POST /partner/orders"] == 3  # two outages, then accepted
        sleeps = [e for e in journal if e.kind is legato.EntryKind.SLEEP]
        assert len(sleeps) == 2  # a durable back-off before each retry
        assert [e["data"] for e in accepted] == [{"order": "SO-77", "partnerReference": "P-SO-77"}]
        assert alerts == []

    run(body)


def test_the_integration_defers_and_alerts_when_the_partner_stays_down(
    db_url: str, api: PartnerApi
) -> None:
    api.partner_failures = 1000

    async def body() -> None:
        async with running_worker(db_url) as (worker, client):
            handle = await client.start_blueprint(example(INTEGRATION), hand_off(api))
            record = await client.wait(handle.run_id, timeout=30)
            names = [e.name for e in await client.journal(record.run_id) if e.name]
            accepted = await events(worker, "com.example.partner.order-accepted")
            alerts = await events(worker, "com.example.partner.handoff-failed")
        result = output(record)
        assert (result["order"], result["status"]) == ("SO-77", "deferred")
        assert result["reason"] == "HTTP 503 Service Unavailable"
        assert "answered 503" in result["detail"]
        assert api.hits["POST /partner/orders"] == 4  # the first call and three retries
        assert len(alerts) == 1 and accepted == []
        assert alerts[0]["subject"] == "SO-77"
        assert alerts[0]["data"]["order"] == "SO-77" and alerts[0]["data"]["status"] == 503
        assert "/do/1/announceHandOff" not in names  # `then: end` stopped the run

    run(body)


def test_the_integration_does_not_retry_other_errors(db_url: str) -> None:
    with PartnerApi(partner_failures=1000, partner_status=400) as api:

        async def body() -> None:
            async with running_worker(db_url) as (worker, client):
                handle = await client.start_blueprint(example(INTEGRATION), hand_off(api))
                record = await client.wait(handle.run_id, timeout=30)
                alerts = await events(worker, "com.example.partner.handoff-failed")
            found = problem(record)
            assert (found["status"], found["instance"]) == (400, "/do/0/handOff/try/0/sendOrder")
            assert api.hits["POST /partner/orders"] == 1
            assert alerts == []

        run(body)
