"""Order fulfilment: parallel notifications, a flaky warehouse API that is retried,
a payment, a 'shipped' signal from the warehouse, a durable cooling-off sleep and an
invoice produced by a child run.

Run it with ``make demo`` (see demo.py), or by hand:

    legato run examples/order_fulfilment.py:fulfil_order --input @examples/order.json
    legato signal <run id> shipped --data '{"carrier": "DHL"}'   # from another terminal
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

import legato


@dataclass
class Order:
    id: str
    sku: str
    cents: int
    contacts: list[str] = field(default_factory=list)


@dataclass
class Receipt:
    status: str
    payment_id: str | None = None
    carrier: str | None = None
    invoice: str | None = None


_warehouse_calls: dict[str, int] = {}


@legato.step(retry=legato.Retry(max_attempts=5, initial_interval=0.2, backoff=2))
async def reserve(sku: str) -> bool:
    """The warehouse API times out twice before it answers (a flaky dependency)."""
    key = legato.idempotency_key()
    _warehouse_calls[key] = _warehouse_calls.get(key, 0) + 1
    if _warehouse_calls[key] <= 2:
        raise TimeoutError("warehouse API did not answer in time")
    return True


@legato.step
def charge(order_id: str, cents: int) -> str:
    """A sync step (runs in a thread); the idempotency key makes a retried charge safe."""
    key = legato.idempotency_key()
    return "pay_" + hashlib.sha256(key.encode()).hexdigest()[:10]


@legato.step
async def notify(contact: str, message: str) -> str:
    await asyncio.sleep(0.1)  # an e-mail or chat API call
    return f"{contact}: {message}"


@legato.step
async def render_invoice(order_id: str, payment_id: str) -> str:
    return f"INV-{order_id}-{payment_id[-4:]}"


@legato.workflow
async def send_invoice(order_id: str, payment_id: str) -> str:
    return await render_invoice(order_id, payment_id)


@legato.workflow
async def fulfil_order(order: Order) -> Receipt:
    if not await reserve(order.sku):
        return Receipt(status="out_of_stock")
    payment = await charge(order.id, order.cents)
    await asyncio.gather(*(notify(c, f"order {order.id} is paid") for c in order.contacts))
    shipped = await legato.wait_for_signal("shipped", timeout=timedelta(days=3))
    await legato.sleep(timedelta(seconds=2))  # a cooling-off period (days, in real life)
    invoice = await legato.child(send_invoice, order.id, payment)
    return Receipt(
        status="shipped", payment_id=payment, carrier=shipped["carrier"], invoice=invoice
    )
