"""Seed 002: aggregation of draft children into a parent, the locks it puts on them, the
parent's life (issue, pay: the children follow; release), `related`, the document view,
the new identifiers and attachments, over gRPC and REST."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import grpc
import httpx
import pytest
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as pb

from tests.conftest import Tokens, error_info, sample_invoice

PROJECT = "7d1f0e4a-1111-4a8e-9a51-2f7d4d2c1e11"
PARTY = "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"
Stub = invoices_pb2_grpc.InvoiceServiceStub
Md = tuple[tuple[str, str], ...]


async def draft(invoices: Stub, md: Md, **overrides: Any) -> pb.Invoice:
    fields = {"project_id": PROJECT, **overrides}
    return await invoices.CreateInvoice(
        pb.CreateInvoiceRequest(invoice=sample_invoice(**fields)), metadata=md
    )


def line(quantity: str, price: str, rate: str = "0.20") -> pb.LineItem:
    return pb.LineItem(description="x", quantity=quantity, unit_price=price, tax_rate=rate)


async def aggregate(invoices: Stub, md: Md, *children: pb.Invoice) -> pb.Invoice:
    return await invoices.AggregateInvoices(
        pb.AggregateInvoicesRequest(child_ids=[c.id for c in children], notes="monthly"),
        metadata=md,
    )


async def refused(call: Any, code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call
    assert failure.value.code() == code, failure.value.details()
    return failure.value


async def test_three_drafts_become_a_parent_with_their_exact_lines_and_totals(
    invoices: Stub, md: Md
) -> None:
    children = [
        await draft(invoices, md, line_items=[line("3", "19.99"), line("1", "0.05", "0.055")]),
        await draft(invoices, md, line_items=[line("7", "0.33")]),
        await draft(invoices, md),
    ]
    parent = await aggregate(invoices, md, *children)
    assert parent.is_aggregation_parent and parent.status == pb.INVOICE_STATUS_DRAFT
    assert parent.project_id == PROJECT and parent.counterparty_id == PARTY
    assert parent.notes == "monthly"
    assert len(parent.line_items) == 4
    for name in ("subtotal", "tax_amount", "discount_amount", "total"):
        assert Decimal(getattr(parent, name)) == sum(Decimal(getattr(c, name)) for c in children)
    assert {r.id for r in parent.related} == {c.id for c in children}
    assert {r.relation for r in parent.related} == {pb.RELATION_CHILD}
    child = await invoices.GetInvoice(pb.GetInvoiceRequest(id=children[0].id), metadata=md)
    assert child.parent_id == parent.id
    [up] = child.related
    assert (up.relation, up.id, up.total) == (pb.RELATION_PARENT, parent.id, parent.total)
    listed = await invoices.ListInvoices(
        pb.ListInvoicesRequest(filter=f'parent_id = "{parent.id}"'), metadata=md
    )
    assert {i.id for i in listed.data} == {c.id for c in children}


@pytest.mark.parametrize(("currency", "price"), [("JPY", "333"), ("EUR", "3.33"), ("BHD", "3.333")])
async def test_parent_totals_are_exact_in_every_minor_unit(
    invoices: Stub, md: Md, currency: str, price: str
) -> None:
    children = [
        await draft(invoices, md, currency=currency, line_items=[line(q, price, "0.075")])
        for q in ("1", "2", "7")
    ]
    parent = await aggregate(invoices, md, *children)
    assert Decimal(parent.total) == sum(Decimal(c.total) for c in children)
    assert Decimal(parent.tax_amount) == sum(Decimal(c.tax_amount) for c in children)
    [row] = parent.tax_breakdown
    assert Decimal(row.tax_amount) == Decimal(parent.tax_amount)


async def test_aggregated_children_are_locked_naming_the_parent(
    invoices: Stub, md: Md, allocations: allocations_pb2_grpc.AllocationServiceStub
) -> None:
    a, b = await draft(invoices, md), await draft(invoices, md)
    parent = await aggregate(invoices, md, a, b)
    attempts = [
        invoices.UpdateInvoice(
            pb.UpdateInvoiceRequest(invoice=pb.Invoice(id=a.id, notes="x")), metadata=md
        ),
        invoices.IssueInvoice(pb.IssueInvoiceRequest(id=a.id), metadata=md),
        invoices.VoidInvoice(pb.VoidInvoiceRequest(id=a.id, reason="x"), metadata=md),
        invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=a.id), metadata=md),
        invoices.PayInvoice(pb.PayInvoiceRequest(id=a.id, amount="1.00"), metadata=md),
        invoices.AggregateInvoices(pb.AggregateInvoicesRequest(child_ids=[a.id]), metadata=md),
    ]
    for attempt in attempts:
        err = await refused(attempt, grpc.StatusCode.FAILED_PRECONDITION)
        info = error_info(err)
        assert info.reason == "INVOICE_AGGREGATED" and info.metadata["parentId"] == parent.id
    txn = await allocations.CreateTransaction(
        apb.CreateTransactionRequest(
            transaction=apb.Transaction(
                direction=apb.TRANSACTION_DIRECTION_RECEIVABLE, amount="10.00", currency="EUR"
            )
        ),
        metadata=md,
    )
    allocation = apb.Allocation(invoice_id=a.id, transaction_id=txn.id, amount="1.00")
    await refused(
        allocations.CreateAllocation(
            apb.CreateAllocationRequest(allocation=allocation), metadata=md
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_what_cannot_be_aggregated_is_refused(invoices: Stub, md: Md, tokens: Tokens) -> None:
    base = await draft(invoices, md)
    other_party = await draft(invoices, md, counterparty_id=str(uuid.uuid4()))
    other_currency = await draft(invoices, md, currency="USD")
    no_project = await draft(invoices, md, project_id="")
    issued = await draft(invoices, md)
    await invoices.IssueInvoice(pb.IssueInvoiceRequest(id=issued.id), metadata=md)
    cases = [
        ([base, other_party], "CHILDREN_DIFFER"),
        ([base, other_currency], "CHILDREN_DIFFER"),
        ([no_project], "PROJECT_REQUIRED"),
        ([base, issued], "INVOICE_NOT_DRAFT"),
    ]
    for children, reason in cases:
        err = await refused(aggregate(invoices, md, *children), grpc.StatusCode.FAILED_PRECONDITION)
        assert error_info(err).reason == reason
    for bad, code in (
        ([], grpc.StatusCode.INVALID_ARGUMENT),
        (["inv_nope"], grpc.StatusCode.INVALID_ARGUMENT),
        ([base.id, base.id], grpc.StatusCode.INVALID_ARGUMENT),
        ([base.id, "inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P"], grpc.StatusCode.NOT_FOUND),
    ):
        await refused(
            invoices.AggregateInvoices(pb.AggregateInvoicesRequest(child_ids=bad), metadata=md),
            code,
        )
    # Another tenant's draft is NOT_FOUND, like an unknown one.
    stranger = await draft(invoices, tokens.md(uuid.uuid4()))
    await refused(aggregate(invoices, md, base, stranger), grpc.StatusCode.NOT_FOUND)
    # Nothing was locked by the refusals.
    unlocked = await invoices.UpdateInvoice(
        pb.UpdateInvoiceRequest(invoice=pb.Invoice(id=base.id, notes="free")), metadata=md
    )
    assert unlocked.notes == "free" and not unlocked.parent_id


async def test_two_aggregations_sharing_a_child_give_one_parent(invoices: Stub, md: Md) -> None:
    shared, x, y = [await draft(invoices, md) for _ in range(3)]
    results = await asyncio.gather(
        aggregate(invoices, md, shared, x),
        aggregate(invoices, md, shared, y),
        return_exceptions=True,
    )
    made = [r for r in results if isinstance(r, pb.Invoice)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(made) == 1 and len(failed) == 1
    assert failed[0].code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(failed[0]).reason == "INVOICE_AGGREGATED"
    child = await invoices.GetInvoice(pb.GetInvoiceRequest(id=shared.id), metadata=md)
    assert child.parent_id == made[0].id


async def test_the_parent_is_issued_and_paid_and_the_children_follow(
    invoices: Stub, md: Md
) -> None:
    a, b = await draft(invoices, md), await draft(invoices, md)
    parent = await aggregate(invoices, md, a, b)
    fixed = await refused(
        invoices.UpdateInvoice(
            pb.UpdateInvoiceRequest(
                invoice=pb.Invoice(id=parent.id, line_items=[line("1", "1.00")]),
                update_mask={"paths": ["line_items"]},
            ),
            metadata=md,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error_info(fixed).reason == "AGGREGATION_PARENT_FIXED"
    await refused(
        invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=parent.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    issued = await invoices.IssueInvoice(pb.IssueInvoiceRequest(id=parent.id), metadata=md)
    assert issued.number.startswith("INV-")
    await invoices.PayInvoice(pb.PayInvoiceRequest(id=parent.id, amount="100.00"), metadata=md)
    for child in (a, b):
        got = await invoices.GetInvoice(pb.GetInvoiceRequest(id=child.id), metadata=md)
        assert got.payment_status == pb.PAYMENT_STATUS_PARTIALLY_PAID
    paid = await invoices.PayInvoice(pb.PayInvoiceRequest(id=parent.id), metadata=md)
    assert paid.payment_status == pb.PAYMENT_STATUS_PAID
    for child in (a, b):
        got = await invoices.GetInvoice(pb.GetInvoiceRequest(id=child.id), metadata=md)
        assert got.payment_status == pb.PAYMENT_STATUS_PAID and got.paid_at == paid.paid_at
    await refused(
        invoices.ReleaseAggregation(pb.ReleaseAggregationRequest(id=parent.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )


async def test_releasing_a_draft_parent_unlocks_the_children_and_deletes_it(
    invoices: Stub, md: Md
) -> None:
    a, b = await draft(invoices, md), await draft(invoices, md)
    parent = await aggregate(invoices, md, a, b)
    released = await invoices.ReleaseAggregation(
        pb.ReleaseAggregationRequest(id=parent.id, etag=parent.etag), metadata=md
    )
    assert {c.id for c in released.children} == {a.id, b.id}
    assert all(not c.parent_id for c in released.children)
    gone = await invoices.GetInvoice(pb.GetInvoiceRequest(id=parent.id), metadata=md)
    assert gone.is_deleted
    issued = await invoices.IssueInvoice(pb.IssueInvoiceRequest(id=a.id), metadata=md)
    assert issued.status == pb.INVOICE_STATUS_ISSUED
    plain = await draft(invoices, md)
    err = await refused(
        invoices.ReleaseAggregation(pb.ReleaseAggregationRequest(id=plain.id), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert error_info(err).reason == "NOT_AGGREGATION_PARENT"


async def test_identifiers_and_attachments(invoices: Stub, md: Md) -> None:
    err = await refused(
        invoices.CreateInvoice(
            pb.CreateInvoiceRequest(invoice=sample_invoice(job_id="J-1")), metadata=md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert error_info(err).reason == "JOB_ID_SUPPLIER_ONLY"
    files = [
        pb.Attachment(
            name="invoice.pdf",
            content_type="application/pdf",
            size_bytes=1234,
            url="https://files.example/invoice.pdf",
        ),
        pb.Attachment(name="timesheet.xlsx", url="uploads/2026/11/timesheet.xlsx"),
    ]
    supplier = await invoices.CreateInvoice(
        pb.CreateInvoiceRequest(
            invoice=sample_invoice(
                type=pb.INVOICE_TYPE_SUPPLIER,
                number="S-1",
                job_id="J-1",
                flex_transaction_id="FLX-9",
                attachments=files,
            )
        ),
        metadata=md,
    )
    assert (supplier.job_id, supplier.flex_transaction_id) == ("J-1", "FLX-9")
    assert [a.name for a in supplier.attachments] == ["invoice.pdf", "timesheet.xlsx"]
    for bad, reason in (
        (pb.Attachment(name="x", url="javascript:alert(1)"), "INVALID_URL"),
        (pb.Attachment(name="", url="https://x.example/a"), "REQUIRED"),
        (
            pb.Attachment(name="x", url="https://x.example/a", content_type="pdf"),
            "INVALID_CONTENT_TYPE",
        ),
    ):
        err = await refused(
            invoices.CreateInvoice(
                pb.CreateInvoiceRequest(invoice=sample_invoice(attachments=[bad])), metadata=md
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert error_info(err).reason == reason
    too_many = [pb.Attachment(name=f"f{i}", url=f"files/{i}") for i in range(21)]
    await refused(
        invoices.CreateInvoice(
            pb.CreateInvoiceRequest(invoice=sample_invoice(attachments=too_many)), metadata=md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


ROOT_NODES = {
    "identifiers",
    "properties",
    "lines",
    "totals",
    "attachments",
    "distribution",
    "aggregation",
    "related",
}


def snake_keys(node: Any, where: str = "") -> list[str]:
    """Every key spelt with an underscore anywhere in a JSON value (seed 002 is camelCase)."""
    if isinstance(node, dict):
        found = [f"{where}{k}" for k in node if "_" in k]
        return found + [x for k, v in node.items() for x in snake_keys(v, f"{where}{k}.")]
    if isinstance(node, list):
        return [x for i, v in enumerate(node) for x in snake_keys(v, f"{where}{i}.")]
    return []


def iso_date(date: dict[str, int] | None) -> str | None:
    """A google.type.Date (canonical JSON) as seed 002 writes it: "YYYY-MM-DD", or null."""
    if date is None:
        return None
    return f"{date['year']:04d}-{date['month']:02d}-{date['day']:02d}"


async def test_the_document_over_rest_has_every_root_node_and_real_company_flags(
    rest_base_url: str,
    tokens: Tokens,
    channel: grpc.aio.Channel,
) -> None:
    tenant = uuid.uuid4()
    md = tokens.md(tenant)
    invoices = invoices_pb2_grpc.InvoiceServiceStub(channel)
    settings = allocations_pb2_grpc.AllocationServiceStub(channel)
    my_company = str(uuid.uuid4())
    await settings.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(company_id=my_company),
            update_mask={"paths": ["company_id"]},
        ),
        metadata=md,
    )
    a, b = await draft(invoices, md, order_id=3353), await draft(invoices, md)
    headers = {"Authorization": f"Bearer {tokens.token(tenant)}"}
    async with httpx.AsyncClient(base_url=rest_base_url, headers=headers) as http:
        made = await http.post("/v1/invoices:aggregate", json={"child_ids": [a.id, b.id]})
        assert made.status_code == 200, made.text
        parent = made.json()
        doc = await http.get(f"/v1/invoices/{parent['id']}/document")
        assert doc.status_code == 200, doc.text
        body = doc.json()
        # Seed 002's spelling: camelCase node and field names, nothing snake_case.
        assert set(body) == ROOT_NODES
        assert snake_keys(body) == [], body
        ids_ = body["identifiers"]
        assert ids_["id"] == parent["id"]
        assert ids_["isClientInvoice"] is True and ids_["isSupplierInvoice"] is False
        assert ids_["clientCompanyId"] == PARTY and ids_["clientIsInternal"] is False
        assert ids_["supplierCompanyId"] == my_company and ids_["supplierIsInternal"] is True
        assert ids_["projectId"] == PROJECT
        assert "jobId" in ids_ and ids_["jobId"] is None  # unset optional ids are null
        assert "flexTransactionId" not in ids_  # only when set (seed 002)
        assert body["aggregation"]["isParent"] is True and body["aggregation"]["childCount"] == 2
        assert {r["id"] for r in body["related"]} == {a.id, b.id}
        assert {r["relation"] for r in body["related"]} == {"RELATION_CHILD"}  # full names
        # Money stays decimal strings on this path: the parent's exact total.
        assert body["totals"]["total"] == parent["total"]
        assert body["totals"]["amountDue"] == parent["amount_due"]
        assert body["properties"]["status"] == "INVOICE_STATUS_DRAFT"
        assert body["properties"]["issueDate"] == iso_date(parent.get("issue_date"))
        child_doc = (await http.get(f"/v1/invoices/{a.id}/document")).json()
        assert snake_keys(child_doc) == [], child_doc
        # A 64-bit id as seed 002 types it: a JSON number (canonical JSON: the string "3353").
        assert child_doc["identifiers"]["orderId"] == 3353
        assert child_doc["aggregation"]["isChild"] is True
        assert child_doc["aggregation"]["parentId"] == parent["id"]
        child_date = {
            "year": a.issue_date.year,
            "month": a.issue_date.month,
            "day": a.issue_date.day,
        }
        expected = iso_date(child_date if a.HasField("issue_date") else None)
        assert child_doc["properties"]["issueDate"] == expected
        assert [r["relation"] for r in child_doc["related"]] == ["RELATION_PARENT"]
        released = await http.post(f"/v1/invoices/{parent['id']}:release", json={})
        assert released.status_code == 200, released.text
        missing = await http.get("/v1/invoices/inv_01JD6N8Q6Z7T3M3Y5C4V8R2K1P/document")
        assert missing.status_code == 404
