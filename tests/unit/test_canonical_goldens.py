"""The canonical paths' JSON is unchanged by the seed dialects: goldens.

Fully populated, deterministic messages of every resource are rendered the way a canonical
binding renders them (`transcode.to_json`, `app.error_body`) and compared byte for byte with
`tests/fixtures/goldens/*.json`. The goldens were written by this very file's `render()` run
against the code before the dialects existed (commit fd71a82), so an equal render proves the
canonical format did not move. Regenerate deliberately with `GOLDENS=write` (and say why in
the commit).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2
from google.protobuf.message import Message
from google.type import date_pb2
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import connections_pb2 as cpb
from invoicing.v1 import invoices_pb2 as ipb
from invoicing.v1 import provenance_pb2 as ppb

from service.gateway import app, transcode
from service.gateway.bindings import bindings_from_services, generated_services

GOLDENS = Path(__file__).resolve().parents[1] / "fixtures" / "goldens"
BINDINGS = bindings_from_services(generated_services())
WHEN = timestamp_pb2.Timestamp(seconds=1_778_422_991, nanos=123_456_000)
DAY = date_pb2.Date(year=2026, month=5, day=10)
INVOICE = "inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P"
CONNECTION = "con_01JD6N8Q6Z7T3M3Y5C4V8R2K1Q"


def invoice() -> ipb.Invoice:
    line = ipb.LineItem(
        description="Consulting",
        quantity="10",
        unit_price="120.10",
        tax_rate="0.20",
        discount_amount="0.00",
        subtotal="1201.00",
        amount="1201.00",
        tax_amount="240.20",
    )
    return ipb.Invoice(
        id=INVOICE,
        tenant_id="00000000-0000-4000-8000-000000000001",
        number="INV-2026-0042",
        type=ipb.INVOICE_TYPE_CUSTOMER,
        direction=ipb.INVOICE_DIRECTION_RECEIVABLE,
        status=ipb.INVOICE_STATUS_ISSUED,
        counterparty_id="0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
        issue_date=DAY,
        due_date=date_pb2.Date(year=2026, month=6, day=9),
        currency="EUR",
        subtotal="1201.00",
        tax_amount="240.20",
        discount_amount="0.00",
        total="1441.20",
        amount="1441.20",
        amount_paid="500.00",
        amount_due="941.20",
        payment_status=ipb.PAYMENT_STATUS_PARTIALLY_PAID,
        line_items=[line],
        tax_breakdown=[
            ipb.TaxBreakdown(tax_rate="0.20", taxable_amount="1201.00", tax_amount="240.20")
        ],
        tags=["consulting"],
        order_id=3353,
        created_at=WHEN,
        updated_at=WHEN,
        issued_at=WHEN,
        etag='W/"3"',
        job_id="",
        flex_transaction_id="flex-7",
    )


def messages() -> dict[str, tuple[str, Message]]:
    """golden name -> (the rpc whose canonical binding renders it, the message)."""
    listing = ipb.ListInvoicesResponse(data=[invoice()], next_cursor="c2", total=7)
    allocation = apb.Allocation(
        id="alc_01JD6N8Q6Z7T3M3Y5C4V8R2K1R",
        invoice_transaction_id="alc_01JD6N8Q6Z7T3M3Y5C4V8R2K1R",
        amount="500.00",
        currency="USD",
        invoice_amount="460.00",
        invoice_currency="EUR",
        accounting_amount="460.00",
        accounting_currency="EUR",
        allocation_type=apb.ALLOCATION_TYPE_PARTIAL,
        is_partial=True,
        invoice_id=INVOICE,
        transaction_id="txn_01JD6N8Q6Z7T3M3Y5C4V8R2K1S",
        created_at=WHEN,
        updated_at=WHEN,
        etag='W/"1"',
    )
    connection = cpb.Connection(
        id=CONNECTION,
        tenant_id="00000000-0000-4000-8000-000000000001",
        provider="yooz",
        active=True,
        has_credentials=True,
        has_webhook_secret=False,
        created_at=WHEN,
        updated_at=WHEN,
        etag='W/"2"',
    )
    provenance = ppb.InvoiceProvenance(
        id="prv_01JD6N8Q6Z7T3M3Y5C4V8R2K1T",
        invoice_id=INVOICE,
        connection_id=CONNECTION,
        direction=ppb.PROVENANCE_DIRECTION_INPUT,
        created_at=WHEN,
    )
    return {
        "invoice": ("GetInvoice", invoice()),
        "invoice-list": ("ListInvoices", listing),
        "allocation": ("GetAllocation", allocation),
        "allocation-list": (
            "ListAllocations",
            apb.ListAllocationsResponse(data=[allocation], next_cursor="", total=1),
        ),
        "connection": ("GetConnection", connection),
        "connection-list": (
            "ListConnections",
            cpb.ListConnectionsResponse(data=[connection], next_cursor="n"),
        ),
        "provenance": ("GetInvoiceProvenance", provenance),
    }


def render() -> dict[str, bytes]:
    """Each golden as the canonical (first, non-alias) binding of its rpc renders it, and
    the canonical error body."""
    out = {}
    for name, (rpc, message) in messages().items():
        binding = next(b for b in BINDINGS if b.rpc.name == rpc and not b.alias)
        out[name] = transcode.to_json(message, binding)
    err = app.HttpError(
        400, "INVALID_ARGUMENT", "id: must be an id", reason="INVALID_ID", field="id"
    )
    out["error"] = app.error_body(err, "0af7651916cd43dd8448eb211c80319c")
    return out


def test_canonical_json_equals_the_goldens() -> None:
    rendered = render()
    if os.environ.get("GOLDENS") == "write":
        GOLDENS.mkdir(parents=True, exist_ok=True)
        for name, body in rendered.items():
            (GOLDENS / f"{name}.json").write_bytes(body + b"\n")
        pytest.fail("goldens written; rerun without GOLDENS=write")
    for name, body in rendered.items():
        golden = (GOLDENS / f"{name}.json").read_bytes().rstrip(b"\n")
        assert body == golden, name
    assert {p.stem for p in GOLDENS.glob("*.json")} == set(rendered)


def test_goldens_are_canonical_not_a_dialect() -> None:
    """The goldens hold what the seeds' dialects change: full enum names, money as strings,
    snake_case, lists as {data, next_cursor, total}."""
    invoice_text = (GOLDENS / "invoice.json").read_text()
    assert '"type":"INVOICE_TYPE_CUSTOMER"' in invoice_text and '"total":"1441.20"' in invoice_text
    assert '"issue_date":{"year":2026,"month":5,"day":10}' in invoice_text
    assert '"has_credentials":true' in (GOLDENS / "connection.json").read_text()
    assert '"next_cursor":"c2"' in (GOLDENS / "invoice-list.json").read_text()
