"""Python functions the invoice-pipeline blueprint calls (``call: finance.extract_invoice``).

A worker imports this module to make them callable from blueprints:

    legato worker --app examples/blueprints/invoice_functions.py

Functions are plain Python: they run as journalled steps, so a function that succeeded is
never called again for the same run, even if the worker crashes right after it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import legato

_FIELD = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z ]*?)\s*:\s*(?P<value>.+?)\s*$")
_AMOUNT = re.compile(r"^(?P<number>[0-9][0-9,]*(?:\.[0-9]{1,2})?)\s*(?P<currency>[A-Za-z]{3})?$")

# The labels an invoice uses for each field, lower case; the first one found wins.
_LABELS: dict[str, tuple[str, ...]] = {
    "number": ("invoice", "invoice number"),
    "po": ("po", "purchase order"),
    "vendor": ("vendor", "supplier"),
    "amount": ("total", "amount", "amount due"),
    "currency": ("currency",),
}


@legato.blueprint.function("finance.extract_invoice")
def extract_invoice(text: str) -> dict[str, Any]:
    """The fields of a small text invoice: ``{number, po, amount, currency, vendor}``.

    The text has one ``Label: value`` per line, for example::

        Invoice: INV-2041
        Vendor: Northwind Supplies
        PO: PO-1001
        Total: 1,250.00 EUR

    The currency may follow the total or have a line of its own. A missing field or an
    unreadable total raises ``ValueError`` naming it, which the run reports as a
    ``runtime`` error (nothing is guessed: a wrong amount must never be booked).
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD.match(line)
        if match is None:
            continue
        label = match["key"].strip().lower()
        for field, labels in _LABELS.items():
            if label in labels and field not in found:
                found[field] = match["value"]
    missing = [field for field in ("number", "po", "vendor", "amount") if field not in found]
    if missing:
        raise ValueError(
            f"the invoice text has no {', '.join(missing)} line "
            "(expected lines such as 'Invoice: INV-1', 'PO: PO-1', 'Vendor: ...', "
            "'Total: 120.00 EUR')"
        )
    amount, currency = _amount(found["amount"])
    currency = currency or found.get("currency", "").strip().upper()
    if not currency:
        raise ValueError(
            "the invoice gives no currency: write it after the total or on a 'Currency:' line"
        )
    return {
        "number": found["number"],
        "po": found["po"],
        "vendor": found["vendor"],
        "amount": amount,
        "currency": currency,
    }


def _amount(text: str) -> tuple[float | int, str | None]:
    """``'1,250.00 EUR'`` -> ``(1250, 'EUR')``: a JSON number and the currency, if given."""
    match = _AMOUNT.match(text.strip())
    if match is None:
        raise ValueError(f"cannot read the invoice total {text!r} (write it like '1,250.00 EUR')")
    try:
        value = Decimal(match["number"].replace(",", ""))
    except InvalidOperation as exc:
        raise ValueError(f"cannot read the invoice total {text!r}") from exc
    # Whole amounts stay integers so they compare and print as the PO system sends them.
    number: float | int = int(value) if value == value.to_integral_value() else float(value)
    return number, match["currency"].upper() if match["currency"] else None
