"""InvoiceService over the real gRPC port and a real PostgreSQL (nothing mocked).

Every test runs in its own random tenant (the `tenant` / `md` fixtures), so tests
never see each other's rows. Sections:

  helpers · create · get · update · delete/undelete · issue · void · pay
  · authentication · ids and not-found · bad input · idempotency
  · lists (limits, ordering, cursors, totals) · filters · app scoping · rounding
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import grpc
import jwt
import pytest
from google.type import date_pb2
from invoicing.v1 import invoices_pb2 as pb
from invoicing.v1 import invoices_pb2_grpc

from service.kit import config
from tests.conftest import (
    Tokens,
    count_invoices,
    error_info,
    rich_status,
    sample_invoice,
    violations,
)
from tests.factories import as_date, fails, invalid, mask, today_utc

Stub = invoices_pb2_grpc.InvoiceServiceStub
Metadata = tuple[tuple[str, str], ...]
Code = grpc.StatusCode

CUSTOMER, SUPPLIER = pb.INVOICE_TYPE_CUSTOMER, pb.INVOICE_TYPE_SUPPLIER
DRAFT, ISSUED, VOID = pb.INVOICE_STATUS_DRAFT, pb.INVOICE_STATUS_ISSUED, pb.INVOICE_STATUS_VOID
DOMAIN = "invoicing.v1"
PARTY_A = "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"  # sample_invoice's counterparty
PARTY_B = "5e0c7a1b-3f4d-4c2e-8b6a-9d1e2f3a4b5c"
VALID_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # 26 Crockford base32 characters
UNKNOWN_ID = f"inv_{VALID_BODY}"


# ---- helpers ----------------------------------------------------------------------


def line(
    quantity: str, unit_price: str, tax_rate: str = "", discount: str = "", description: str = ""
) -> pb.LineItem:
    return pb.LineItem(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        tax_rate=tax_rate,
        discount_amount=discount,
    )


def day(year: int, month: int, dom: int) -> date_pb2.Date:
    return date_pb2.Date(year=year, month=month, day=dom)


def supplier(number: str = "SUP-1", **overrides: Any) -> pb.Invoice:
    return sample_invoice(type=SUPPLIER, number=number, **overrides)


async def create(invoices: Stub, md: Metadata, invoice: pb.Invoice | None = None) -> pb.Invoice:
    request = pb.CreateInvoiceRequest(invoice=invoice or sample_invoice())
    result: pb.Invoice = await invoices.CreateInvoice(request, metadata=md)
    return result


async def create_many(
    invoices: Stub, md: Metadata, drafts: Sequence[pb.Invoice], batch: int = 50
) -> list[pb.Invoice]:
    created: list[pb.Invoice] = []
    for start in range(0, len(drafts), batch):
        chunk = drafts[start : start + batch]
        created += await asyncio.gather(*(create(invoices, md, d) for d in chunk))
    return created


async def issue(invoices: Stub, md: Metadata, invoice_id: str, **kwargs: Any) -> pb.Invoice:
    result: pb.Invoice = await invoices.IssueInvoice(
        pb.IssueInvoiceRequest(id=invoice_id, **kwargs), metadata=md
    )
    return result


async def get(invoices: Stub, md: Metadata, invoice_id: str) -> pb.Invoice:
    result: pb.Invoice = await invoices.GetInvoice(pb.GetInvoiceRequest(id=invoice_id), metadata=md)
    return result


async def update(
    invoices: Stub, md: Metadata, invoice: pb.Invoice, *paths: str, masked: bool = True
) -> pb.Invoice:
    request = pb.UpdateInvoiceRequest(invoice=invoice)
    if masked:
        request.update_mask.CopyFrom(mask(*paths))
    result: pb.Invoice = await invoices.UpdateInvoice(request, metadata=md)
    return result


async def list_page(invoices: Stub, md: Metadata, **kwargs: Any) -> pb.ListInvoicesResponse:
    result: pb.ListInvoicesResponse = await invoices.ListInvoices(
        pb.ListInvoicesRequest(**kwargs), metadata=md
    )
    return result


async def list_ids(invoices: Stub, md: Metadata, **kwargs: Any) -> set[str]:
    page = await list_page(invoices, md, limit=200, **kwargs)
    assert page.next_cursor == ""
    return {inv.id for inv in page.data}


async def walk(invoices: Stub, md: Metadata, **kwargs: Any) -> list[pb.Invoice]:
    """Every page of a list, following next_cursor to the end."""
    seen: list[pb.Invoice] = []
    cursor = ""
    for _ in range(1000):
        page = await list_page(invoices, md, cursor=cursor, **kwargs)
        seen += page.data
        cursor = page.next_cursor
        if not cursor:
            return seen
    raise AssertionError("pagination never ended")


def money(value: str) -> Decimal:
    return Decimal(value)


def assert_totals_add_up(inv: pb.Invoice) -> None:
    assert money(inv.total) == money(inv.subtotal) + money(inv.tax_amount) - money(
        inv.discount_amount
    )
    assert inv.amount == inv.total
    assert money(inv.subtotal) == sum((money(li.subtotal) for li in inv.line_items), Decimal(0))
    assert money(inv.tax_amount) == sum((money(li.tax_amount) for li in inv.line_items), Decimal(0))
    assert money(inv.discount_amount) == sum(
        (money(li.discount_amount) for li in inv.line_items), Decimal(0)
    )


# ---- CreateInvoice ----------------------------------------------------------------


async def test_create_customer_invoice_computes_totals_and_two_rate_breakdown(
    invoices: Stub, md: Metadata, tenant: uuid.UUID
) -> None:
    draft = sample_invoice(
        line_items=[
            line("10", "120.00", "0.20", description="Consulting"),
            line("2", "50.00", "0.055", "10.00", description="Travel"),
            line("1", "30.00", "0.2", description="Expenses"),  # same rate, other spelling
        ],
        notes="Payment within 30 days",
        tags=["urgent", "q3"],
    )
    inv = await create(invoices, md, draft)

    assert inv.id.startswith("inv_") and len(inv.id) == 30
    assert inv.tenant_id == str(tenant)
    assert inv.status == DRAFT
    assert inv.type == CUSTOMER
    assert inv.direction == pb.INVOICE_DIRECTION_RECEIVABLE
    assert inv.counterparty_id == PARTY_A
    assert inv.account_id == PARTY_A
    assert inv.vendor_id == ""
    assert inv.number == ""
    assert inv.app_id == ""
    assert inv.currency == "EUR"
    assert [(li.subtotal, li.amount, li.tax_amount) for li in inv.line_items] == [
        ("1200.00", "1200.00", "240.00"),
        ("100.00", "90.00", "4.95"),
        ("30.00", "30.00", "6.00"),
    ]
    assert [li.description for li in inv.line_items] == ["Consulting", "Travel", "Expenses"]
    assert inv.line_items[1].discount_amount == "10.00"
    assert (inv.subtotal, inv.discount_amount, inv.tax_amount, inv.total) == (
        "1330.00",
        "10.00",
        "250.95",
        "1570.95",
    )
    assert inv.amount == "1570.95"
    assert inv.amount_paid == "0.00"
    assert inv.amount_due == "1570.95"
    assert inv.payment_status == pb.PAYMENT_STATUS_UNPAID
    assert [(r.tax_rate, r.taxable_amount, r.tax_amount) for r in inv.tax_breakdown] == [
        ("0.055", "90.00", "4.95"),
        ("0.2", "1230.00", "246.00"),
    ]
    assert_totals_add_up(inv)
    assert list(inv.tags) == ["urgent", "q3"]
    assert inv.notes == "Payment within 30 days"
    assert inv.source == "edm"
    assert inv.created_by == inv.updated_by == inv.created_by_id == "dev-user"
    assert inv.HasField("created_at") and inv.HasField("updated_at")
    assert not inv.is_deleted and not inv.HasField("deleted_at")
    assert inv.etag
    assert not inv.overdue


async def test_create_supplier_invoice_derives_payable_and_mirrors_vendor_id(
    invoices: Stub, md: Metadata
) -> None:
    inv = await create(invoices, md, supplier("ACME-0042", counterparty_id="", vendor_id=PARTY_B))

    assert inv.type == SUPPLIER
    assert inv.direction == pb.INVOICE_DIRECTION_PAYABLE
    assert inv.number == "ACME-0042"
    assert inv.counterparty_id == PARTY_B
    assert inv.vendor_id == PARTY_B
    assert inv.account_id == ""
    assert inv.total == "1440.00"


async def test_create_customer_with_account_id_only_sets_counterparty(
    invoices: Stub, md: Metadata
) -> None:
    inv = await create(invoices, md, sample_invoice(counterparty_id="", account_id=PARTY_B))
    assert inv.counterparty_id == inv.account_id == PARTY_B


async def test_create_with_explicit_consistent_direction_is_accepted(
    invoices: Stub, md: Metadata
) -> None:
    inv = await create(
        invoices, md, supplier(direction=pb.INVOICE_DIRECTION_PAYABLE, vendor_id=PARTY_A)
    )
    assert inv.direction == pb.INVOICE_DIRECTION_PAYABLE


async def test_create_with_app_token_stamps_app_id_and_subject(
    invoices: Stub, tokens: Tokens, tenant: uuid.UUID
) -> None:
    app_md = tokens.md(tenant, app_id="shopify-sync", subject="svc-shopify")
    inv = await create(invoices, app_md)
    assert inv.app_id == "shopify-sync"
    assert inv.created_by == inv.updated_by == "svc-shopify"


async def test_create_accepts_lowercase_currency_and_stores_it_upper_case(
    invoices: Stub, md: Metadata
) -> None:
    inv = await create(invoices, md, sample_invoice(currency="eur"))
    assert inv.currency == "EUR"
    assert inv.total == "1440.00"


async def test_create_accepts_client_totals_that_agree(invoices: Stub, md: Metadata) -> None:
    inv = await create(
        invoices,
        md,
        sample_invoice(
            subtotal="1200.00", tax_amount="240", discount_amount="0", total="1440", amount="1440.0"
        ),
    )
    assert inv.total == "1440.00"


async def test_create_accepts_jpy_fractional_unit_price(invoices: Stub, md: Metadata) -> None:
    inv = await create(
        invoices, md, sample_invoice(currency="JPY", line_items=[line("3", "1.5", "0.1")])
    )
    # 3 x 1.5 = 4.5 -> 5 yen; tax 0.5 -> 1 yen
    assert (inv.subtotal, inv.tax_amount, inv.total) == ("5", "1", "6")
    assert inv.line_items[0].unit_price == "1.5"


async def test_create_stores_optional_references(invoices: Stub, md: Metadata) -> None:
    project, contract, po = (str(uuid.uuid4()) for _ in range(3))
    inv = await create(
        invoices,
        md,
        sample_invoice(
            project_id=project,
            contract_id=contract,
            po_id=po,
            order_id=77,
            document_ref="s3://bucket/inv.pdf",
            issue_date=day(2026, 3, 1),
            due_date=day(2026, 3, 31),
        ),
    )
    assert (inv.project_id, inv.contract_id, inv.po_id) == (project, contract, po)
    assert inv.HasField("order_id") and inv.order_id == 77
    assert not inv.HasField("project_sequence_id")
    assert inv.document_ref == "s3://bucket/inv.pdf"
    assert as_date(inv.issue_date) == date(2026, 3, 1)
    assert as_date(inv.due_date) == date(2026, 3, 31)


async def test_create_supplier_number_reused_for_same_counterparty_already_exists(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    await create(invoices, md, supplier("SUP-9"))
    err = await fails(
        invoices.CreateInvoice(pb.CreateInvoiceRequest(invoice=supplier("SUP-9")), metadata=md),
        Code.ALREADY_EXISTS,
    )
    assert error_info(err).reason == "SUPPLIER_NUMBER_TAKEN"
    assert await count_invoices(admin, tenant) == 1


async def test_create_supplier_number_race_yields_one_invoice_and_already_exists(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    results = await asyncio.gather(
        *(create(invoices, md, supplier("RACE-1")) for _ in range(8)), return_exceptions=True
    )
    created = [r for r in results if isinstance(r, pb.Invoice)]
    errors = [r for r in results if not isinstance(r, pb.Invoice)]
    assert len(created) == 1
    assert all(
        isinstance(e, grpc.aio.AioRpcError) and e.code() == Code.ALREADY_EXISTS for e in errors
    ), errors
    assert await count_invoices(admin, tenant) == 1


async def test_create_supplier_number_reused_for_another_counterparty_is_accepted(
    invoices: Stub, md: Metadata
) -> None:
    first = await create(invoices, md, supplier("SUP-9"))
    second = await create(invoices, md, supplier("SUP-9", counterparty_id=PARTY_B))
    assert (first.number, second.number) == ("SUP-9", "SUP-9")
    assert first.counterparty_id != second.counterparty_id


async def test_create_supplier_number_reused_in_another_tenant_is_accepted(
    invoices: Stub, md: Metadata, tokens: Tokens
) -> None:
    await create(invoices, md, supplier("SUP-9"))
    theirs = await create(invoices, tokens.md(uuid.uuid4()), supplier("SUP-9"))
    assert theirs.number == "SUP-9"


# ---- GetInvoice ---------------------------------------------------------------------


async def test_get_returns_the_created_invoice(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    assert await get(invoices, md, created.id) == created


async def test_get_lowercase_id_finds_the_invoice(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    lowered = "inv_" + created.id.removeprefix("inv_").lower()
    assert (await get(invoices, md, lowered)).id == created.id


async def test_get_another_tenants_invoice_is_not_found_like_an_unknown_id(
    invoices: Stub, md: Metadata, tokens: Tokens
) -> None:
    theirs = await create(invoices, tokens.md(uuid.uuid4()))
    other = await fails(get(invoices, md, theirs.id), Code.NOT_FOUND)
    unknown = await fails(get(invoices, md, UNKNOWN_ID), Code.NOT_FOUND)

    assert error_info(other).reason == "INVOICE_NOT_FOUND"
    # Same bytes, up to the id itself (both ids have the same length).
    assert rich_status(other).SerializeToString() == rich_status(
        unknown
    ).SerializeToString().replace(UNKNOWN_ID.encode(), theirs.id.encode())


# ---- UpdateInvoice ----------------------------------------------------------------


async def test_update_with_mask_changes_only_the_named_fields(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md, sample_invoice(notes="old", tags=["a"]))
    updated = await update(
        invoices, md, pb.Invoice(id=created.id, notes="new", tags=["ignored"]), "notes"
    )

    assert updated.notes == "new"
    assert list(updated.tags) == ["a"]
    assert updated.etag != created.etag
    assert updated.total == created.total
    assert (await get(invoices, md, created.id)) == updated


async def test_update_without_mask_applies_the_populated_fields(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md, sample_invoice(notes="keep me", document_ref="a"))
    updated = await update(
        invoices,
        md,
        pb.Invoice(id=created.id, tags=["x", "y"], due_date=day(2031, 1, 31)),
        masked=False,
    )

    assert list(updated.tags) == ["x", "y"]
    assert as_date(updated.due_date) == date(2031, 1, 31)
    assert updated.notes == "keep me"  # not populated: untouched
    assert updated.document_ref == "a"
    assert updated.line_items == created.line_items


async def test_update_line_items_recomputes_totals_and_changes_etag(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md)
    updated = await update(
        invoices,
        md,
        pb.Invoice(
            id=created.id,
            currency="EUR",
            line_items=[line("1", "100.00", "0.10"), line("3", "9.99", "0.20", "0.97")],
        ),
        "line_items",
        "currency",
    )

    assert [(li.subtotal, li.amount, li.tax_amount) for li in updated.line_items] == [
        ("100.00", "100.00", "10.00"),
        ("29.97", "29.00", "5.80"),
    ]
    assert (updated.subtotal, updated.discount_amount, updated.tax_amount, updated.total) == (
        "129.97",
        "0.97",
        "15.80",
        "144.80",
    )
    assert [(r.tax_rate, r.taxable_amount, r.tax_amount) for r in updated.tax_breakdown] == [
        ("0.1", "100.00", "10.00"),
        ("0.2", "29.00", "5.80"),
    ]
    assert updated.amount_due == "144.80"
    assert updated.etag != created.etag
    assert_totals_add_up(updated)


async def test_update_line_items_alone_uses_the_stored_currency(
    invoices: Stub, md: Metadata
) -> None:
    """The mask names only line_items; the stored currency (EUR) must apply."""
    created = await create(invoices, md)
    updated = await update(
        invoices, md, pb.Invoice(id=created.id, line_items=[line("2", "10.00")]), "line_items"
    )
    assert (updated.currency, updated.total) == ("EUR", "20.00")


async def test_update_currency_change_to_jpy_with_cent_discount_is_invalid_argument(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    """A EUR line discount of 0.50 is not an amount in JPY: reject it, never INTERNAL."""
    created = await create(
        invoices, md, sample_invoice(line_items=[line("1", "100.00", "0.10", "0.50")])
    )
    err = await fails(
        update(invoices, md, pb.Invoice(id=created.id, currency="JPY"), "currency"),
        Code.INVALID_ARGUMENT,
    )
    assert violations(err)
    assert (await get(invoices, md, created.id)).currency == "EUR"
    assert await count_invoices(admin, tenant) == 1


async def test_update_stamps_updated_by_but_keeps_created_by(
    invoices: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await create(invoices, md)
    other = tokens.md(tenant, subject="alice")
    updated = await update(invoices, other, pb.Invoice(id=created.id, notes="x"), "notes")
    assert (updated.created_by, updated.updated_by) == ("dev-user", "alice")


async def test_update_with_current_etag_succeeds(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    updated = await update(
        invoices, md, pb.Invoice(id=created.id, etag=created.etag, notes="ok"), "notes"
    )
    assert updated.notes == "ok"


async def test_update_with_stale_etag_is_aborted(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await update(invoices, md, pb.Invoice(id=created.id, notes="first"), "notes")
    err = await fails(
        update(invoices, md, pb.Invoice(id=created.id, etag=created.etag, notes="late"), "notes"),
        Code.ABORTED,
    )
    assert error_info(err).reason == "ETAG_MISMATCH"
    assert (await get(invoices, md, created.id)).notes == "first"


async def test_update_concurrent_with_same_etag_lets_exactly_one_win(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md)
    results = await asyncio.gather(
        *(
            update(
                invoices, md, pb.Invoice(id=created.id, etag=created.etag, notes=f"n{i}"), "notes"
            )
            for i in range(6)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, pb.Invoice)]
    losers = [r for r in results if not isinstance(r, pb.Invoice)]
    assert len(winners) == 1
    assert all(isinstance(e, grpc.aio.AioRpcError) and e.code() == Code.ABORTED for e in losers)
    assert (await get(invoices, md, created.id)).notes == winners[0].notes


@pytest.mark.parametrize("path", ["nope", "line_items.quantity", "invoice.notes"])
async def test_update_mask_with_unknown_path_is_invalid_argument(
    invoices: Stub, md: Metadata, path: str
) -> None:
    created = await create(invoices, md)
    err = await invalid(update(invoices, md, pb.Invoice(id=created.id), path), "update_mask")
    assert error_info(err).metadata["path"] == path


@pytest.mark.parametrize("path", ["status", "id", "etag", "tax_breakdown", "created_at"])
async def test_update_mask_with_output_only_path_is_invalid_argument(
    invoices: Stub, md: Metadata, path: str
) -> None:
    created = await create(invoices, md)
    request = pb.Invoice(id=created.id, status=VOID)
    err = await invalid(update(invoices, md, request, path), "update_mask")
    assert error_info(err).reason == "READ_ONLY_FIELD"
    assert (await get(invoices, md, created.id)).status == DRAFT


async def test_update_with_malformed_value_names_the_field(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await invalid(
        update(invoices, md, pb.Invoice(id=created.id, due_date=day(2026, 2, 30)), "due_date"),
        "invoice.due_date",
    )


async def test_update_supplier_number_to_a_taken_one_already_exists(
    invoices: Stub, md: Metadata
) -> None:
    await create(invoices, md, supplier("S-1"))
    second = await create(invoices, md, supplier("S-2"))
    err = await fails(
        update(invoices, md, pb.Invoice(id=second.id, number="S-1"), "number"),
        Code.ALREADY_EXISTS,
    )
    assert error_info(err).reason == "SUPPLIER_NUMBER_TAKEN"


async def test_update_account_id_on_supplier_invoice_is_invalid_argument(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md, supplier())
    await invalid(
        update(invoices, md, pb.Invoice(id=created.id, account_id=PARTY_B), "account_id"),
        "invoice.account_id",
    )


async def test_update_unknown_invoice_is_not_found(invoices: Stub, md: Metadata) -> None:
    await fails(update(invoices, md, pb.Invoice(id=UNKNOWN_ID, notes="x"), "notes"), Code.NOT_FOUND)


async def test_update_deleted_invoice_is_not_found(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=created.id), metadata=md)
    await fails(update(invoices, md, pb.Invoice(id=created.id, notes="x"), "notes"), Code.NOT_FOUND)


# ---- DeleteInvoice / UndeleteInvoice ------------------------------------------------


async def test_delete_draft_is_soft_and_hidden_from_lists(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    kept = await create(invoices, md)
    doomed = await create(invoices, md)
    deleted = await invoices.DeleteInvoice(
        pb.DeleteInvoiceRequest(id=doomed.id, etag=doomed.etag), metadata=md
    )

    assert deleted.is_deleted
    assert deleted.HasField("deleted_at")
    assert deleted.deleted_by == "dev-user"
    assert deleted.etag != doomed.etag
    assert await count_invoices(admin, tenant) == 2  # soft
    assert await list_ids(invoices, md) == {kept.id}
    assert await list_ids(invoices, md, show_deleted=True) == {kept.id, doomed.id}
    fetched = await get(invoices, md, doomed.id)
    assert fetched.is_deleted and fetched.id == doomed.id


async def test_delete_issued_invoice_is_failed_precondition(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await issue(invoices, md, created.id)
    err = await fails(
        invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=created.id), metadata=md),
        Code.FAILED_PRECONDITION,
    )
    assert error_info(err).reason == "INVOICE_NOT_DRAFT"
    assert not (await get(invoices, md, created.id)).is_deleted


async def test_delete_with_stale_etag_is_aborted(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await update(invoices, md, pb.Invoice(id=created.id, notes="changed"), "notes")
    await fails(
        invoices.DeleteInvoice(
            pb.DeleteInvoiceRequest(id=created.id, etag=created.etag), metadata=md
        ),
        Code.ABORTED,
    )
    assert not (await get(invoices, md, created.id)).is_deleted


async def test_delete_already_deleted_invoice_is_not_found(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=created.id), metadata=md)
    await fails(
        invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=created.id), metadata=md),
        Code.NOT_FOUND,
    )


async def test_undelete_restores_a_deleted_invoice(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    deleted = await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=created.id), metadata=md)
    restored = await invoices.UndeleteInvoice(
        pb.UndeleteInvoiceRequest(id=created.id, etag=deleted.etag), metadata=md
    )

    assert not restored.is_deleted
    assert not restored.HasField("deleted_at")
    assert restored.deleted_by == ""
    assert restored.total == created.total
    assert await list_ids(invoices, md) == {created.id}


async def test_undelete_live_invoice_already_exists(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    err = await fails(
        invoices.UndeleteInvoice(pb.UndeleteInvoiceRequest(id=created.id), metadata=md),
        Code.ALREADY_EXISTS,
    )
    assert error_info(err).reason == "INVOICE_NOT_DELETED"


async def test_undelete_after_supplier_number_was_reused_already_exists(
    invoices: Stub, md: Metadata
) -> None:
    first = await create(invoices, md, supplier("DUP-7"))
    await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=first.id), metadata=md)
    await create(invoices, md, supplier("DUP-7"))  # the number is free again
    err = await fails(
        invoices.UndeleteInvoice(pb.UndeleteInvoiceRequest(id=first.id), metadata=md),
        Code.ALREADY_EXISTS,
    )
    assert error_info(err).reason == "SUPPLIER_NUMBER_TAKEN"
    assert (await get(invoices, md, first.id)).is_deleted


async def test_undelete_with_stale_etag_is_aborted(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=created.id), metadata=md)
    await fails(
        invoices.UndeleteInvoice(
            pb.UndeleteInvoiceRequest(id=created.id, etag=created.etag), metadata=md
        ),
        Code.ABORTED,
    )


# ---- IssueInvoice -----------------------------------------------------------------


async def test_issue_assigns_gapless_number_and_defaults_issue_date(
    invoices: Stub, md: Metadata
) -> None:
    first, second = await create(invoices, md), await create(invoices, md)
    issued_first = await issue(invoices, md, first.id, etag=first.etag)
    issued_second = await issue(invoices, md, second.id)
    year = today_utc().year

    assert issued_first.status == ISSUED
    assert issued_first.number == f"INV-{year}-0001"
    assert issued_second.number == f"INV-{year}-0002"
    assert as_date(issued_first.issue_date) == today_utc()
    assert issued_first.HasField("issued_at")
    assert issued_first.etag != first.etag
    assert issued_first.total == first.total
    assert issued_first.line_items == first.line_items


async def test_issue_numbers_per_year_of_the_issue_date(invoices: Stub, md: Metadata) -> None:
    old = await create(invoices, md, sample_invoice(issue_date=day(2024, 12, 31)))
    new = await create(invoices, md)
    assert (await issue(invoices, md, old.id)).number == "INV-2024-0001"
    assert (await issue(invoices, md, new.id)).number == f"INV-{today_utc().year}-0001"


async def test_issue_numbers_are_per_tenant(invoices: Stub, md: Metadata, tokens: Tokens) -> None:
    other_md = tokens.md(uuid.uuid4())
    mine, theirs = await create(invoices, md), await create(invoices, other_md)
    year = today_utc().year
    assert (await issue(invoices, md, mine.id)).number == f"INV-{year}-0001"
    assert (await issue(invoices, other_md, theirs.id)).number == f"INV-{year}-0001"


async def test_issue_concurrently_assigns_distinct_gapless_numbers(
    invoices: Stub, md: Metadata
) -> None:
    drafts = await create_many(invoices, md, [sample_invoice() for _ in range(12)])
    issued = await asyncio.gather(*(issue(invoices, md, d.id) for d in drafts))
    year = today_utc().year
    assert sorted(i.number for i in issued) == [f"INV-{year}-{n:04d}" for n in range(1, 13)]


async def test_issue_same_invoice_concurrently_issues_it_once(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    results = await asyncio.gather(
        *(issue(invoices, md, created.id) for _ in range(5)), return_exceptions=True
    )
    numbers = [r.number for r in results if isinstance(r, pb.Invoice)]
    failures = [r for r in results if not isinstance(r, pb.Invoice)]
    assert numbers == [f"INV-{today_utc().year}-0001"]
    assert all(
        isinstance(f, grpc.aio.AioRpcError) and f.code() == Code.FAILED_PRECONDITION
        for f in failures
    ), failures


async def test_issue_supplier_invoice_keeps_supplier_number(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md, supplier("ACME-99"))
    issued = await issue(invoices, md, created.id)
    assert issued.status == ISSUED
    assert issued.number == "ACME-99"


async def test_issue_freezes_money_fields(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    issued = await issue(invoices, md, created.id)
    for paths, body in [
        (("line_items",), pb.Invoice(currency="EUR", line_items=[line("1", "1.00")])),
        (("currency",), pb.Invoice(currency="USD")),
        (("counterparty_id",), pb.Invoice(counterparty_id=PARTY_B)),
        (("issue_date",), pb.Invoice(issue_date=day(2020, 1, 1))),
    ]:
        body.id = created.id
        err = await fails(update(invoices, md, body, *paths), Code.FAILED_PRECONDITION)
        assert error_info(err).reason == "FIELD_NOT_EDITABLE"
    after = await get(invoices, md, created.id)
    assert after.line_items == issued.line_items
    assert (after.currency, after.total, after.counterparty_id) == ("EUR", "1440.00", PARTY_A)


@pytest.mark.parametrize("kind", ["customer", "supplier"])
async def test_issue_leaves_notes_tags_due_date_and_document_ref_editable(
    invoices: Stub, md: Metadata, kind: str
) -> None:
    created = await create(invoices, md, sample_invoice() if kind == "customer" else supplier())
    issued = await issue(invoices, md, created.id)
    updated = await update(
        invoices,
        md,
        pb.Invoice(
            id=created.id,
            etag=issued.etag,
            notes="paid by wire",
            tags=["chased"],
            due_date=day(2099, 1, 1),
            document_ref="s3://docs/1.pdf",
        ),
        "notes",
        "tags",
        "due_date",
        "document_ref",
    )
    assert updated.status == ISSUED
    assert (updated.notes, list(updated.tags), updated.document_ref) == (
        "paid by wire",
        ["chased"],
        "s3://docs/1.pdf",
    )
    assert as_date(updated.due_date) == date(2099, 1, 1)
    assert updated.number == issued.number
    assert updated.total == issued.total


async def test_issue_assigns_project_sequence_per_project_and_type(
    invoices: Stub, md: Metadata
) -> None:
    project_a, project_b = str(uuid.uuid4()), str(uuid.uuid4())
    a1, a2, b1, a_supplier, none = await create_many(
        invoices,
        md,
        [
            sample_invoice(project_id=project_a),
            sample_invoice(project_id=project_a),
            sample_invoice(project_id=project_b),
            supplier(project_id=project_a),
            sample_invoice(),
        ],
    )
    issued = [await issue(invoices, md, inv.id) for inv in (a1, b1, a2, a_supplier, none)]
    assert [i.project_sequence_id for i in issued[:4]] == [1, 1, 2, 1]
    assert not issued[4].HasField("project_sequence_id")
    assert (await get(invoices, md, a2.id)).project_sequence_id == 2


async def test_issue_non_draft_is_failed_precondition(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    issued = await issue(invoices, md, created.id)
    err = await fails(issue(invoices, md, created.id), Code.FAILED_PRECONDITION)
    assert error_info(err).reason == "INVOICE_NOT_DRAFT"
    assert (await get(invoices, md, created.id)).number == issued.number


async def test_issue_without_line_items_is_failed_precondition(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md, sample_invoice(line_items=[]))
    err = await fails(issue(invoices, md, created.id), Code.FAILED_PRECONDITION)
    assert "line_items" in error_info(err).metadata["missing"]
    assert (await get(invoices, md, created.id)).status == DRAFT


async def test_issue_without_counterparty_is_failed_precondition(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md, sample_invoice(counterparty_id=""))
    err = await fails(issue(invoices, md, created.id), Code.FAILED_PRECONDITION)
    assert "counterparty_id" in error_info(err).metadata["missing"]


async def test_issue_supplier_without_number_is_failed_precondition(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md, sample_invoice(type=SUPPLIER))
    err = await fails(issue(invoices, md, created.id), Code.FAILED_PRECONDITION)
    assert "number" in error_info(err).metadata["missing"]


async def test_issue_with_due_date_before_default_issue_date_is_failed_precondition(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md, sample_invoice(due_date=day(2020, 1, 1)))
    await fails(issue(invoices, md, created.id), Code.FAILED_PRECONDITION)
    assert (await get(invoices, md, created.id)).status == DRAFT


async def test_issue_with_stale_etag_is_aborted(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await update(invoices, md, pb.Invoice(id=created.id, notes="edited"), "notes")
    await fails(issue(invoices, md, created.id, etag=created.etag), Code.ABORTED)
    assert (await get(invoices, md, created.id)).status == DRAFT


async def test_issue_deleted_invoice_is_not_found(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=created.id), metadata=md)
    await fails(issue(invoices, md, created.id), Code.NOT_FOUND)


# ---- VoidInvoice ------------------------------------------------------------------


async def test_void_issued_invoice_records_reason_and_time(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    issued = await issue(invoices, md, created.id)
    voided = await invoices.VoidInvoice(
        pb.VoidInvoiceRequest(id=created.id, etag=issued.etag, reason="duplicate"), metadata=md
    )

    assert voided.status == VOID
    assert voided.void_reason == "duplicate"
    assert voided.HasField("voided_at")
    assert voided.number == issued.number
    assert voided.etag != issued.etag
    assert await get(invoices, md, created.id) == voided


async def test_void_draft_is_failed_precondition(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    err = await fails(
        invoices.VoidInvoice(pb.VoidInvoiceRequest(id=created.id), metadata=md),
        Code.FAILED_PRECONDITION,
    )
    assert error_info(err).reason == "INVOICE_NOT_ISSUED"


async def test_void_twice_is_failed_precondition(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await issue(invoices, md, created.id)
    await invoices.VoidInvoice(pb.VoidInvoiceRequest(id=created.id, reason="a"), metadata=md)
    await fails(
        invoices.VoidInvoice(pb.VoidInvoiceRequest(id=created.id, reason="b"), metadata=md),
        Code.FAILED_PRECONDITION,
    )
    assert (await get(invoices, md, created.id)).void_reason == "a"


async def test_void_with_stale_etag_is_aborted(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await issue(invoices, md, created.id)
    await fails(
        invoices.VoidInvoice(pb.VoidInvoiceRequest(id=created.id, etag=created.etag), metadata=md),
        Code.ABORTED,
    )
    assert (await get(invoices, md, created.id)).status == ISSUED


async def test_void_with_overlong_reason_is_invalid_argument(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await issue(invoices, md, created.id)
    await invalid(
        invoices.VoidInvoice(pb.VoidInvoiceRequest(id=created.id, reason="r" * 1001), metadata=md),
        "reason",
    )


async def test_void_invoice_accepts_no_update(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await issue(invoices, md, created.id)
    await invoices.VoidInvoice(pb.VoidInvoiceRequest(id=created.id), metadata=md)
    await fails(
        update(invoices, md, pb.Invoice(id=created.id, notes="x"), "notes"),
        Code.FAILED_PRECONDITION,
    )


# ---- PayInvoice -------------------------------------------------------------------


async def test_pay_invoice_on_a_draft_is_failed_precondition(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    err = await fails(
        invoices.PayInvoice(pb.PayInvoiceRequest(id=created.id), metadata=md),
        Code.FAILED_PRECONDITION,
    )
    assert error_info(err).reason == "INVOICE_NOT_PAYABLE"
    assert error_info(err).metadata["status"] == "draft"


# ---- authentication and permissions -------------------------------------------------

RPCS: dict[str, Callable[[Stub], Callable[..., Awaitable[Any]]]] = {
    "CreateInvoice": lambda s: s.CreateInvoice,
    "GetInvoice": lambda s: s.GetInvoice,
    "ListInvoices": lambda s: s.ListInvoices,
    "UpdateInvoice": lambda s: s.UpdateInvoice,
    "DeleteInvoice": lambda s: s.DeleteInvoice,
    "UndeleteInvoice": lambda s: s.UndeleteInvoice,
    "IssueInvoice": lambda s: s.IssueInvoice,
    "VoidInvoice": lambda s: s.VoidInvoice,
    "PayInvoice": lambda s: s.PayInvoice,
}
REQUESTS: dict[str, Any] = {
    "CreateInvoice": pb.CreateInvoiceRequest(invoice=sample_invoice()),
    "GetInvoice": pb.GetInvoiceRequest(id=UNKNOWN_ID),
    "ListInvoices": pb.ListInvoicesRequest(),
    "UpdateInvoice": pb.UpdateInvoiceRequest(invoice=pb.Invoice(id=UNKNOWN_ID, notes="x")),
    "DeleteInvoice": pb.DeleteInvoiceRequest(id=UNKNOWN_ID),
    "UndeleteInvoice": pb.UndeleteInvoiceRequest(id=UNKNOWN_ID),
    "IssueInvoice": pb.IssueInvoiceRequest(id=UNKNOWN_ID),
    "VoidInvoice": pb.VoidInvoiceRequest(id=UNKNOWN_ID),
    "PayInvoice": pb.PayInvoiceRequest(id=UNKNOWN_ID),
}
WRITE_RPCS = [name for name in RPCS if not name.startswith(("Get", "List"))]


@pytest.mark.parametrize("rpc", list(RPCS))
async def test_rpc_without_metadata_is_unauthenticated(invoices: Stub, rpc: str) -> None:
    await fails(RPCS[rpc](invoices)(REQUESTS[rpc]), Code.UNAUTHENTICATED)


@pytest.mark.parametrize(
    "authorization", ["Bearer not-a-jwt", "Basic dXNlcjpwYXNz", "Bearer ", "bearer"]
)
async def test_get_with_bad_authorization_is_unauthenticated(
    invoices: Stub, authorization: str
) -> None:
    await fails(
        invoices.GetInvoice(
            pb.GetInvoiceRequest(id=UNKNOWN_ID), metadata=(("authorization", authorization),)
        ),
        Code.UNAUTHENTICATED,
    )


def _forged(settings: config.Settings, case: str) -> str:
    now = int(datetime.now(UTC).timestamp())
    claims: dict[str, Any] = {
        "sub": "mallory",
        "tenant_id": str(uuid.uuid4()),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "exp": now + 600,
        "permissions": ["invoices.read", "invoices.write"],
    }
    if case == "wrong_secret":
        return jwt.encode(claims, "not-the-server-secret-but-long-enough!", algorithm="HS256")
    if case == "alg_none":
        return jwt.encode(claims, None, algorithm="none")
    secret = (settings.data_dir / "dev-jwt-secret").read_text().strip()
    if case == "expired":
        claims["exp"] = now - 3600
    elif case == "wrong_audience":
        claims["aud"] = "someone-else"
    elif case == "wrong_issuer":
        claims["iss"] = "someone-else"
    elif case == "no_tenant":
        del claims["tenant_id"]
    elif case == "no_subject":
        del claims["sub"]
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize(
    "case",
    [
        "wrong_secret",
        "alg_none",
        "expired",
        "wrong_audience",
        "wrong_issuer",
        "no_tenant",
        "no_subject",
    ],
)
async def test_create_with_forged_or_invalid_token_is_unauthenticated(
    invoices: Stub, settings: config.Settings, case: str
) -> None:
    bad = (("authorization", f"Bearer {_forged(settings, case)}"),)
    await fails(
        invoices.CreateInvoice(pb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=bad),
        Code.UNAUTHENTICATED,
    )


async def test_create_with_read_only_token_is_permission_denied_and_writes_nothing(
    invoices: Stub, tokens: Tokens, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    reader = tokens.md(tenant, permissions=["invoices.read"])
    err = await fails(
        invoices.CreateInvoice(pb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=reader),
        Code.PERMISSION_DENIED,
    )
    assert error_info(err).metadata["permission"] == "invoices.write"
    assert await count_invoices(admin, tenant) == 0


@pytest.mark.parametrize("rpc", WRITE_RPCS)
async def test_write_rpc_with_read_only_token_is_permission_denied(
    invoices: Stub, tokens: Tokens, tenant: uuid.UUID, rpc: str
) -> None:
    reader = tokens.md(tenant, permissions=["invoices.read"])
    await fails(RPCS[rpc](invoices)(REQUESTS[rpc], metadata=reader), Code.PERMISSION_DENIED)


@pytest.mark.parametrize("rpc", ["GetInvoice", "ListInvoices"])
async def test_read_rpc_with_write_only_token_is_permission_denied(
    invoices: Stub, tokens: Tokens, tenant: uuid.UUID, rpc: str
) -> None:
    writer = tokens.md(tenant, permissions=["invoices.write"])
    await fails(RPCS[rpc](invoices)(REQUESTS[rpc], metadata=writer), Code.PERMISSION_DENIED)


async def test_read_only_token_can_get_and_list(
    invoices: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    created = await create(invoices, md)
    reader = tokens.md(tenant, permissions=["invoices.read"])
    assert (await get(invoices, reader, created.id)).id == created.id
    assert await list_ids(invoices, reader) == {created.id}


# ---- malformed ids and NOT_FOUND, per rpc -------------------------------------------

MALFORMED_IDS = {
    "short": "inv_x",
    "txn_prefix": f"txn_{VALID_BODY}",
    "plain_uuid": PARTY_A,
    "empty": "",
    "upper_prefix": f"INV_{VALID_BODY}",
    "not_crockford": "inv_" + "U" * 26,
    "above_128_bits": "inv_" + "Z" * 26,
    "too_long": f"inv_{VALID_BODY}0",
}
ID_RPCS: dict[str, tuple[Callable[[str], Any], str]] = {
    "GetInvoice": (lambda i: pb.GetInvoiceRequest(id=i), "id"),
    "UpdateInvoice": (
        lambda i: pb.UpdateInvoiceRequest(invoice=pb.Invoice(id=i, notes="x")),
        "invoice.id",
    ),
    "DeleteInvoice": (lambda i: pb.DeleteInvoiceRequest(id=i), "id"),
    "UndeleteInvoice": (lambda i: pb.UndeleteInvoiceRequest(id=i), "id"),
    "IssueInvoice": (lambda i: pb.IssueInvoiceRequest(id=i), "id"),
    "VoidInvoice": (lambda i: pb.VoidInvoiceRequest(id=i), "id"),
}


@pytest.mark.parametrize("bad_id", list(MALFORMED_IDS.values()), ids=list(MALFORMED_IDS))
@pytest.mark.parametrize("rpc", list(ID_RPCS))
async def test_rpc_with_malformed_id_is_invalid_argument(
    invoices: Stub, md: Metadata, rpc: str, bad_id: str
) -> None:
    build, field = ID_RPCS[rpc]
    await invalid(RPCS[rpc](invoices)(build(bad_id), metadata=md), field)


@pytest.mark.parametrize("rpc", list(ID_RPCS))
async def test_rpc_with_unknown_id_is_not_found(invoices: Stub, md: Metadata, rpc: str) -> None:
    build, _ = ID_RPCS[rpc]
    err = await fails(RPCS[rpc](invoices)(build(UNKNOWN_ID), metadata=md), Code.NOT_FOUND)
    assert error_info(err).metadata["id"] == UNKNOWN_ID


@pytest.mark.parametrize("rpc", list(ID_RPCS))
async def test_rpc_on_another_tenants_invoice_is_not_found(
    invoices: Stub, md: Metadata, tokens: Tokens, rpc: str
) -> None:
    other_md = tokens.md(uuid.uuid4())
    theirs = await create(invoices, other_md)
    if rpc == "UndeleteInvoice":
        await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=theirs.id), metadata=other_md)
    before = await get(invoices, other_md, theirs.id)
    build, _ = ID_RPCS[rpc]
    await fails(RPCS[rpc](invoices)(build(theirs.id), metadata=md), Code.NOT_FOUND)
    assert await get(invoices, other_md, theirs.id) == before  # untouched


# ---- bad input on create: INVALID_ARGUMENT naming the field, nothing written -------------


def _with(**overrides: Any) -> pb.Invoice:
    return sample_invoice(**overrides)


BAD_CREATES: list[tuple[str, pb.Invoice, str]] = [
    ("unknown_currency", _with(currency="EUX"), "invoice.currency"),
    ("currency_missing", _with(currency=""), "invoice.currency"),
    (
        "negative_quantity",
        _with(line_items=[line("-1", "10.00")]),
        "invoice.line_items[0].quantity",
    ),
    ("zero_quantity", _with(line_items=[line("0", "10.00")]), "invoice.line_items[0].quantity"),
    ("empty_quantity", _with(line_items=[line("", "10.00")]), "invoice.line_items[0].quantity"),
    (
        "quantity_7_places",
        _with(line_items=[line("1.0000001", "10.00")]),
        "invoice.line_items[0].quantity",
    ),
    (
        "unit_price_30_places",
        _with(line_items=[line("1", "1." + "1" * 30)]),
        "invoice.line_items[0].unit_price",
    ),
    (
        "unit_price_exponent",
        _with(line_items=[line("1", "1e5")]),
        "invoice.line_items[0].unit_price",
    ),
    (
        "unit_price_negative",
        _with(line_items=[line("1", "-5")]),
        "invoice.line_items[0].unit_price",
    ),
    ("unit_price_nan", _with(line_items=[line("1", "NaN")]), "invoice.line_items[0].unit_price"),
    (
        "unit_price_16_integer_digits",
        _with(line_items=[line("1", "1" * 16)]),
        "invoice.line_items[0].unit_price",
    ),
    (
        "tax_rate_above_one",
        _with(line_items=[line("1", "10", "1.01")]),
        "invoice.line_items[0].tax_rate",
    ),
    (
        "tax_rate_percent",
        _with(line_items=[line("1", "10", "20")]),
        "invoice.line_items[0].tax_rate",
    ),
    (
        "discount_above_line_subtotal",
        _with(line_items=[line("1", "10.00", "", "10.01")]),
        "invoice.line_items[0].discount_amount",
    ),
    (
        "eur_discount_three_places",
        _with(line_items=[line("1", "10.00", "", "1.005")]),
        "invoice.line_items[0].discount_amount",
    ),
    (
        "jpy_discount_fraction",
        _with(currency="JPY", line_items=[line("1", "1.5", "", "0.5")]),
        "invoice.line_items[0].discount_amount",
    ),
    (
        "second_line_bad",
        _with(line_items=[line("1", "10"), line("1", "abc")]),
        "invoice.line_items[1].unit_price",
    ),
    (
        "description_too_long",
        _with(line_items=[line("1", "10", description="d" * 1001)]),
        "invoice.line_items[0].description",
    ),
    ("too_many_lines", _with(line_items=[line("1", "1")] * 501), "invoice.line_items"),
    ("malformed_counterparty", _with(counterparty_id="acme"), "invoice.counterparty_id"),
    (
        "counterparty_uuid_no_dashes",
        _with(counterparty_id=uuid.uuid4().hex),
        "invoice.counterparty_id",
    ),
    (
        "account_id_on_supplier",
        _with(type=SUPPLIER, number="S-1", account_id=PARTY_A),
        "invoice.account_id",
    ),
    ("vendor_id_on_customer", _with(vendor_id=PARTY_A), "invoice.vendor_id"),
    ("counterparty_mismatch", _with(account_id=PARTY_B), "invoice.account_id"),
    ("malformed_project_id", _with(project_id="p-1"), "invoice.project_id"),
    ("issue_date_month_13", _with(issue_date=day(2026, 13, 1)), "invoice.issue_date"),
    ("due_date_feb_30", _with(due_date=day(2026, 2, 30)), "invoice.due_date"),
    (
        "due_before_issue",
        _with(issue_date=day(2026, 5, 2), due_date=day(2026, 5, 1)),
        "invoice.due_date",
    ),
    ("type_missing", _with(type=pb.INVOICE_TYPE_UNSPECIFIED), "invoice.type"),
    (
        "direction_inconsistent",
        _with(direction=pb.INVOICE_DIRECTION_PAYABLE),
        "invoice.direction",
    ),
    ("customer_with_number", _with(number="INV-2026-0001"), "invoice.number"),
    ("total_disagrees", _with(total="1440.01"), "invoice.total"),
    ("subtotal_disagrees", _with(subtotal="1440.00"), "invoice.subtotal"),
    ("amount_disagrees", _with(amount="1200.00"), "invoice.amount"),
    ("total_too_precise", _with(total="1440.001"), "invoice.total"),
    ("notes_with_nul", _with(notes="a\x00b"), "invoice.notes"),
    ("notes_too_long", _with(notes="n" * 10001), "invoice.notes"),
    ("too_many_tags", _with(tags=[f"t{i}" for i in range(51)]), "invoice.tags"),
    ("blank_tag", _with(tags=["ok", "  "]), "invoice.tags[1]"),
    ("tag_too_long", _with(tags=["x" * 65]), "invoice.tags[0]"),
    ("order_id_zero", _with(order_id=0), "invoice.order_id"),
]


@pytest.mark.parametrize(
    ("draft", "field"), [c[1:] for c in BAD_CREATES], ids=[c[0] for c in BAD_CREATES]
)
async def test_create_with_bad_field_is_invalid_argument_and_writes_nothing(
    invoices: Stub,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    draft: pb.Invoice,
    field: str,
) -> None:
    err = await invalid(
        invoices.CreateInvoice(pb.CreateInvoiceRequest(invoice=draft), metadata=md), field
    )
    assert error_info(err).metadata["field"] == field
    assert await count_invoices(admin, tenant) == 0


async def test_create_with_amounts_beyond_storage_range_is_invalid_argument(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    """Each input is within its documented bounds (15 integer digits), but the product is
    10**22: the service must refuse it as bad input, not fail with INTERNAL."""
    draft = sample_invoice(line_items=[line("100000000000000", "100000000")])
    err = await fails(
        invoices.CreateInvoice(pb.CreateInvoiceRequest(invoice=draft), metadata=md),
        Code.INVALID_ARGUMENT,
    )
    assert violations(err)
    assert await count_invoices(admin, tenant) == 0


async def test_create_with_exactly_fifty_tags_and_10000_char_notes_is_accepted(
    invoices: Stub, md: Metadata
) -> None:
    inv = await create(
        invoices, md, sample_invoice(tags=[f"t{i}" for i in range(50)], notes="n" * 10000)
    )
    assert len(inv.tags) == 50 and len(inv.notes) == 10000


async def test_create_with_discount_equal_to_line_subtotal_is_accepted(
    invoices: Stub, md: Metadata
) -> None:
    inv = await create(
        invoices, md, sample_invoice(line_items=[line("1", "10.00", "0.2", "10.00")])
    )
    assert (inv.subtotal, inv.discount_amount, inv.tax_amount, inv.total) == (
        "10.00",
        "10.00",
        "0.00",
        "0.00",
    )


# ---- idempotency (request_id) -------------------------------------------------------


async def test_create_retried_with_same_request_id_replays_the_first_response(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    request = pb.CreateInvoiceRequest(invoice=sample_invoice(), request_id=str(uuid.uuid4()))
    first = await invoices.CreateInvoice(request, metadata=md)
    second = await invoices.CreateInvoice(request, metadata=md)

    assert second.SerializeToString(deterministic=True) == first.SerializeToString(
        deterministic=True
    )
    assert await count_invoices(admin, tenant) == 1


async def test_create_same_request_id_with_different_body_is_invalid_argument(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    key = str(uuid.uuid4())
    await invoices.CreateInvoice(
        pb.CreateInvoiceRequest(invoice=sample_invoice(), request_id=key), metadata=md
    )
    err = await invalid(
        invoices.CreateInvoice(
            pb.CreateInvoiceRequest(invoice=sample_invoice(notes="other"), request_id=key),
            metadata=md,
        ),
        "request_id",
    )
    assert error_info(err).reason == "REQUEST_ID_REUSED"
    assert await count_invoices(admin, tenant) == 1


async def test_create_concurrent_same_request_id_writes_one_row(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    request = pb.CreateInvoiceRequest(invoice=sample_invoice(), request_id=str(uuid.uuid4()))
    results = await asyncio.gather(
        *(invoices.CreateInvoice(request, metadata=md) for _ in range(20)),
        return_exceptions=True,
    )

    failures = [r for r in results if isinstance(r, BaseException)]
    internal = [
        f for f in failures if isinstance(f, grpc.aio.AioRpcError) and f.code() == Code.INTERNAL
    ]
    assert not internal, internal[0].details()
    assert not failures, failures
    encoded = {r.SerializeToString(deterministic=True) for r in results}  # type: ignore[union-attr]
    assert len(encoded) == 1
    assert await count_invoices(admin, tenant) == 1


async def test_create_same_request_id_in_another_tenant_gets_its_own_invoice(
    invoices: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    other = uuid.uuid4()
    request = pb.CreateInvoiceRequest(invoice=sample_invoice(), request_id="shared-key-1")
    mine = await invoices.CreateInvoice(request, metadata=md)
    theirs = await invoices.CreateInvoice(request, metadata=tokens.md(other))

    assert mine.id != theirs.id
    assert (mine.tenant_id, theirs.tenant_id) == (str(tenant), str(other))
    assert await count_invoices(admin, tenant) == 1
    assert await count_invoices(admin, other) == 1


async def test_create_after_failed_attempt_with_same_request_id_succeeds(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    """A request that failed wrote nothing, not even its key: the same key can succeed."""
    await create(invoices, md, supplier("TAKEN"))
    key = str(uuid.uuid4())
    await fails(
        invoices.CreateInvoice(
            pb.CreateInvoiceRequest(invoice=supplier("TAKEN"), request_id=key), metadata=md
        ),
        Code.ALREADY_EXISTS,
    )
    ok = await invoices.CreateInvoice(
        pb.CreateInvoiceRequest(invoice=supplier("FREE"), request_id=key), metadata=md
    )
    assert ok.number == "FREE"
    assert await count_invoices(admin, tenant) == 2


@pytest.mark.parametrize("key", ["has space", "x" * 129, "slash/no", "é"])
async def test_create_with_malformed_request_id_is_invalid_argument(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID, key: str
) -> None:
    await invalid(
        invoices.CreateInvoice(
            pb.CreateInvoiceRequest(invoice=sample_invoice(), request_id=key), metadata=md
        ),
        "request_id",
    )
    assert await count_invoices(admin, tenant) == 0


async def test_issue_retried_with_same_request_id_does_not_consume_a_number(
    invoices: Stub, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    first, second = await create(invoices, md), await create(invoices, md)
    request = pb.IssueInvoiceRequest(id=first.id, request_id="issue-" + first.id)
    issued = await invoices.IssueInvoice(request, metadata=md)
    retried = await invoices.IssueInvoice(request, metadata=md)
    year = today_utc().year

    assert retried.SerializeToString(deterministic=True) == issued.SerializeToString(
        deterministic=True
    )
    assert issued.number == f"INV-{year}-0001"
    assert (await issue(invoices, md, second.id)).number == f"INV-{year}-0002"
    last = await admin.fetchval(
        "SELECT last_value FROM invoice_number_counters WHERE tenant_id = $1 AND year = $2",
        tenant,
        year,
    )
    assert last == 2


async def test_issue_with_malformed_request_id_is_invalid_argument(
    invoices: Stub, md: Metadata
) -> None:
    created = await create(invoices, md)
    await invalid(
        invoices.IssueInvoice(pb.IssueInvoiceRequest(id=created.id, request_id="a b"), metadata=md),
        "request_id",
    )
    assert (await get(invoices, md, created.id)).status == DRAFT


async def test_void_retried_with_same_request_id_replays(invoices: Stub, md: Metadata) -> None:
    created = await create(invoices, md)
    await issue(invoices, md, created.id)
    request = pb.VoidInvoiceRequest(id=created.id, reason="dup", request_id="void-1")
    first = await invoices.VoidInvoice(request, metadata=md)
    again = await invoices.VoidInvoice(request, metadata=md)  # not FAILED_PRECONDITION
    assert again == first


# ---- lists: limits, totals ------------------------------------------------------------


async def test_list_with_negative_limit_is_invalid_argument(invoices: Stub, md: Metadata) -> None:
    await invalid(list_page(invoices, md, limit=-1), "limit")


async def test_list_limit_defaults_to_50_and_caps_at_200(invoices: Stub, md: Metadata) -> None:
    created = await create_many(
        invoices, md, [sample_invoice(notes=str(i)) for i in range(205)], batch=41
    )

    default = await list_page(invoices, md, limit=0)
    assert len(default.data) == 50 and default.next_cursor

    capped = await list_page(invoices, md, limit=500)
    assert len(capped.data) == 200 and capped.next_cursor
    rest = await list_page(invoices, md, limit=500, cursor=capped.next_cursor)
    assert len(rest.data) == 5 and rest.next_cursor == ""
    assert {i.id for i in (*capped.data, *rest.data)} == {i.id for i in created}


async def test_list_include_total_counts_filtered_matches_and_is_absent_otherwise(
    invoices: Stub, md: Metadata
) -> None:
    await create_many(
        invoices,
        md,
        [sample_invoice(tags=["urgent"] if i % 3 == 0 else []) for i in range(10)],
    )

    counted = await list_page(invoices, md, limit=2, filter="tags:urgent", include_total=True)
    assert counted.HasField("total") and counted.total == 4
    assert len(counted.data) == 2
    everything = await list_page(invoices, md, limit=1, include_total=True)
    assert everything.total == 10
    none = await list_page(invoices, md, filter="tags:nothing", include_total=True)
    assert none.HasField("total") and none.total == 0
    second = await list_page(
        invoices,
        md,
        limit=2,
        filter="tags:urgent",
        include_total=True,
        cursor=counted.next_cursor,
    )
    assert second.total == 4 and len(second.data) == 2
    plain = await list_page(invoices, md, limit=2, filter="tags:urgent")
    assert not plain.HasField("total")


async def test_list_of_empty_tenant_is_empty(invoices: Stub, md: Metadata) -> None:
    page = await list_page(invoices, md)
    assert list(page.data) == [] and page.next_cursor == ""


# ---- lists: ordering and keyset pagination -------------------------------------------


def _sort_key(field: str) -> Callable[[pb.Invoice], Any]:
    keys: dict[str, Callable[[pb.Invoice], Any]] = {
        "created_at": lambda i: (i.created_at.seconds, i.created_at.nanos),
        "total": lambda i: Decimal(i.total),
        "due_date": lambda i: as_date(i.due_date) if i.HasField("due_date") else None,
        "number": lambda i: i.number or None,
        "updated_at": lambda i: (i.updated_at.seconds, i.updated_at.nanos),
        "issue_date": lambda i: as_date(i.issue_date) if i.HasField("issue_date") else None,
        "amount_due": lambda i: Decimal(i.amount_due),
        "currency": lambda i: i.currency,
    }
    return keys[field]


def expected_order(items: Sequence[pb.Invoice], field: str, descending: bool) -> list[str]:
    """Sort value (NULLs last in both directions), then the id (ids sort like uuids)."""
    key = _sort_key(field)
    present = sorted(
        (i for i in items if key(i) is not None), key=lambda i: (key(i), i.id), reverse=descending
    )
    missing = sorted((i for i in items if key(i) is None), key=lambda i: i.id, reverse=descending)
    return [i.id for i in (*present, *missing)]


def _walk_dataset() -> list[pb.Invoice]:
    """30 invoices with repeated totals, currencies, dates and numbers, and NULL dates
    and numbers."""
    drafts = []
    for i in range(30):
        fields: dict[str, Any] = {
            "line_items": [line("1", f"{(i % 7) * 10 + 10}.00")],
            "counterparty_id": str(uuid.uuid4()),
        }
        if i % 4:
            fields["due_date"] = day(2030, 1, 1 + i % 5)
        if i % 5:
            fields["issue_date"] = day(2029, 12, 1 + i % 3)
        fields["currency"] = ("EUR", "USD", "GBP", "EUR")[i % 4]
        if i % 3 == 0:
            fields.update(type=SUPPLIER, number=f"S-{(i // 3) % 4:04d}")
        drafts.append(sample_invoice(**fields))
    return drafts


@pytest.mark.parametrize(
    ("order_by", "direction"),
    [
        ("", ""),
        ("created_at", "asc"),
        ("total", "asc"),
        ("total", "desc"),
        ("due_date", "asc"),
        ("due_date", "desc"),
        ("number", "asc"),
        ("number", "desc"),
        ("updated_at", "desc"),
        ("issue_date", "asc"),
        ("issue_date", "desc"),
        ("amount_due", "desc"),
        ("currency", "asc"),
    ],
)
async def test_list_walk_with_limit_7_yields_each_invoice_once_in_order(
    invoices: Stub, md: Metadata, order_by: str, direction: str
) -> None:
    created = await create_many(invoices, md, _walk_dataset())
    walked = await walk(invoices, md, limit=7, order_by=order_by, direction=direction)

    ids = [i.id for i in walked]
    assert len(ids) == len(set(ids)) == 30
    assert ids == expected_order(created, order_by or "created_at", direction != "asc")


async def test_list_order_by_aip_form_equals_explicit_direction(
    invoices: Stub, md: Metadata
) -> None:
    created = await create_many(invoices, md, _walk_dataset()[:12])
    aip = await walk(invoices, md, limit=5, order_by="total desc")
    explicit = await walk(invoices, md, limit=5, order_by="total", direction="desc")
    ascending = await walk(invoices, md, limit=5, order_by="total ASC")

    assert [i.id for i in aip] == [i.id for i in explicit]
    assert [i.id for i in aip] == expected_order(created, "total", True)
    assert [i.id for i in ascending] == expected_order(created, "total", False)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"order_by": "notes"}, "order_by"),
        ({"order_by": "total, id"}, "order_by"),
        ({"order_by": "total sideways"}, "order_by"),
        ({"direction": "up"}, "direction"),
        ({"order_by": "total desc", "direction": "asc"}, "direction"),
    ],
)
async def test_list_with_bad_ordering_is_invalid_argument(
    invoices: Stub, md: Metadata, kwargs: dict[str, str], field: str
) -> None:
    await invalid(list_page(invoices, md, **kwargs), field)


# ---- lists: cursors -----------------------------------------------------------------


async def _first_cursor(invoices: Stub, md: Metadata, **kwargs: Any) -> str:
    await create_many(invoices, md, [sample_invoice() for _ in range(5)])
    page = await list_page(invoices, md, limit=2, **kwargs)
    assert page.next_cursor
    return page.next_cursor


def _flip(text: str, index: int) -> str:
    replacement = "B" if text[index] == "A" else "A"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("where", ["payload_start", "payload_middle", "signature_end"])
async def test_list_with_tampered_cursor_is_invalid_argument(
    invoices: Stub, md: Metadata, where: str
) -> None:
    cursor = await _first_cursor(invoices, md)
    index = {"payload_start": 0, "payload_middle": cursor.index(".") // 2, "signature_end": -2}
    tampered = _flip(cursor, index[where] % len(cursor))
    assert tampered != cursor
    await invalid(list_page(invoices, md, limit=2, cursor=tampered), "cursor")


@pytest.mark.parametrize("cursor", ["garbage", "a.b", "...", "x" * 5000])
async def test_list_with_garbage_cursor_is_invalid_argument(
    invoices: Stub, md: Metadata, cursor: str
) -> None:
    await invalid(list_page(invoices, md, cursor=cursor), "cursor")


@pytest.mark.parametrize(
    "changed",
    [
        {"filter": "total > 0"},
        {"direction": "asc"},
        {"order_by": "total"},
        {"show_deleted": True},
    ],
    ids=["filter", "direction", "order_by", "show_deleted"],
)
async def test_list_cursor_reused_with_another_query_is_invalid_argument(
    invoices: Stub, md: Metadata, changed: dict[str, Any]
) -> None:
    cursor = await _first_cursor(invoices, md)
    assert (await list_page(invoices, md, limit=2, cursor=cursor)).data  # valid as issued
    await invalid(list_page(invoices, md, limit=2, cursor=cursor, **changed), "cursor")


async def test_list_cursor_from_another_tenant_is_invalid_argument(
    invoices: Stub, md: Metadata, tokens: Tokens
) -> None:
    cursor = await _first_cursor(invoices, md)
    other = tokens.md(uuid.uuid4())
    await create_many(invoices, other, [sample_invoice() for _ in range(3)])
    await invalid(list_page(invoices, other, limit=2, cursor=cursor), "cursor")


async def test_list_cursor_from_another_app_is_invalid_argument(
    invoices: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    cursor = await _first_cursor(invoices, md)
    await invalid(
        list_page(invoices, tokens.md(tenant, app_id="app-x"), limit=2, cursor=cursor), "cursor"
    )


async def test_list_cursor_with_a_different_limit_continues(invoices: Stub, md: Metadata) -> None:
    created = await create_many(invoices, md, [sample_invoice() for _ in range(6)])
    first = await list_page(invoices, md, limit=2)
    rest = await list_page(invoices, md, limit=10, cursor=first.next_cursor)
    ids = [i.id for i in (*first.data, *rest.data)]
    assert ids == expected_order(created, "created_at", True)
    assert rest.next_cursor == ""


# ---- filters --------------------------------------------------------------------------


async def _filter_world(invoices: Stub, md: Metadata) -> dict[str, pb.Invoice]:
    """Six invoices with distinct statuses, currencies, totals, tags, notes and dates."""
    draft_eur, draft_usd, overdue, later, supplier_inv, voided = await create_many(
        invoices,
        md,
        [
            # 10 x 120.00 + 20 % = 1440.00
            sample_invoice(tags=["urgent"], notes="has foo inside", due_date=day(2031, 1, 1)),
            sample_invoice(
                currency="USD",
                line_items=[line("1", "50.00")],
                tags=["later"],
                counterparty_id=PARTY_B,
            ),
            sample_invoice(
                line_items=[line("1", "100.00")],
                issue_date=day(2020, 1, 1),
                due_date=day(2020, 2, 1),
            ),
            sample_invoice(
                currency="GBP",
                line_items=[line("2", "100.00")],
                issue_date=day(2098, 1, 1),
                due_date=day(2098, 12, 31),
                notes="foo again",
                counterparty_id=PARTY_B,
            ),
            supplier("SUP-1", line_items=[line("1", "100.01")], counterparty_id=PARTY_B),
            sample_invoice(line_items=[line("1", "1000.00")], issue_date=day(2021, 6, 1)),
        ],
    )
    world = {"draft_eur": draft_eur, "draft_usd": draft_usd, "supplier": supplier_inv}
    world["overdue"] = await issue(invoices, md, overdue.id)
    world["later"] = await issue(invoices, md, later.id)
    await issue(invoices, md, voided.id)
    world["void"] = await invoices.VoidInvoice(pb.VoidInvoiceRequest(id=voided.id), metadata=md)
    return world


FILTER_CASES: list[tuple[str, set[str]]] = [
    ("status = ISSUED", {"overdue", "later"}),
    ("status = INVOICE_STATUS_ISSUED", {"overdue", "later"}),
    ("status = issued", {"overdue", "later"}),
    ("status != DRAFT", {"overdue", "later", "void"}),
    ("status IN (VOID, ISSUED)", {"overdue", "later", "void"}),
    ("type = SUPPLIER", {"supplier"}),
    (
        "direction = INVOICE_DIRECTION_RECEIVABLE",
        {"draft_eur", "draft_usd", "overdue", "later", "void"},
    ),
    ("total > 100", {"draft_eur", "later", "supplier", "void"}),
    ('total >= "1440.00"', {"draft_eur"}),
    ("total <= 100", {"draft_usd", "overdue"}),
    ("amount_due = 1000", {"void"}),
    ("currency IN (EUR, USD)", {"draft_eur", "draft_usd", "overdue", "supplier", "void"}),
    ('currency = "GBP"', {"later"}),
    ("tags:urgent", {"draft_eur"}),
    ('number = "INV-*"', {"overdue", "later", "void"}),
    ('number = "INV-2020-0001"', {"overdue"}),
    ("number IS NULL", {"draft_eur", "draft_usd"}),
    ('notes:"foo"', {"draft_eur", "later"}),
    ('due_date < "2030-01-01"', {"overdue"}),
    ('due_date > "2030-01-01"', {"draft_eur", "later"}),
    ("due_date IS NULL", {"draft_usd", "supplier", "void"}),
    ("issue_date >= 2021-01-01", {"later", "void"}),
    (f"counterparty_id = {PARTY_A}", {"draft_eur", "overdue", "void"}),
    ("overdue = true", {"overdue"}),
    ("NOT status = DRAFT", {"overdue", "later", "void"}),
    ("-tags:urgent AND status = DRAFT", {"draft_usd", "supplier"}),
    ("status = VOID OR tags:later", {"void", "draft_usd"}),
    ('(status = DRAFT OR status = VOID) AND currency = "EUR"', {"draft_eur", "supplier", "void"}),
    ("NOT (total > 100 OR currency = USD)", {"overdue"}),
]


@pytest.mark.parametrize(
    ("filter_text", "expected"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES]
)
async def test_list_filter_selects_matching_invoices(
    invoices: Stub, md: Metadata, filter_text: str, expected: set[str]
) -> None:
    world = await _filter_world(invoices, md)
    got = await list_ids(invoices, md, filter=filter_text, include_total=True)
    names = {name for name, inv in world.items() if inv.id in got}
    assert names == expected
    assert len(got) == len(expected)


async def test_list_filter_by_public_id(invoices: Stub, md: Metadata) -> None:
    first, second = await create_many(invoices, md, [sample_invoice(), sample_invoice()])
    assert await list_ids(invoices, md, filter=f"id = {second.id}") == {second.id}
    assert await list_ids(invoices, md, filter=f'id != "{second.id}"') == {first.id}


async def test_list_filter_overdue_false_includes_issued_invoice_without_due_date(
    invoices: Stub, md: Metadata
) -> None:
    """Every invoice is either overdue or not: `overdue = false` is the complement."""
    no_due, past_due = await create_many(
        invoices,
        md,
        [sample_invoice(), sample_invoice(issue_date=day(2020, 1, 1), due_date=day(2020, 1, 2))],
    )
    no_due = await issue(invoices, md, no_due.id)
    past_due = await issue(invoices, md, past_due.id)
    assert not no_due.overdue and past_due.overdue

    assert await list_ids(invoices, md, filter="overdue = true") == {past_due.id}
    assert await list_ids(invoices, md, filter="overdue = false") == {no_due.id}


async def test_list_filter_contains_treats_like_wildcards_literally(
    invoices: Stub, md: Metadata
) -> None:
    percent, digits, underscore, plain = await create_many(
        invoices,
        md,
        [
            sample_invoice(notes="discount 50% off"),
            sample_invoice(notes="5000 units"),
            sample_invoice(notes="ref a_b"),
            sample_invoice(notes="ref axb"),
        ],
    )
    assert await list_ids(invoices, md, filter='notes:"50%"') == {percent.id}
    assert await list_ids(invoices, md, filter='notes:"a_b"') == {underscore.id}
    assert await list_ids(invoices, md, filter='notes:"ref"') == {underscore.id, plain.id}
    assert digits.id in await list_ids(invoices, md, filter='notes:"500"')


async def test_list_filter_with_unknown_field_names_it(invoices: Stub, md: Metadata) -> None:
    err = await invalid(list_page(invoices, md, filter="colour = red"), "filter")
    info = error_info(err)
    assert info.reason == "UNKNOWN_FILTER_FIELD"
    assert info.metadata["filterField"] == "colour"


async def test_list_filter_ordering_operator_on_enum_is_invalid_argument(
    invoices: Stub, md: Metadata
) -> None:
    err = await invalid(list_page(invoices, md, filter="status > DRAFT"), "filter")
    info = error_info(err)
    assert info.reason == "UNSUPPORTED_FILTER_OPERATOR"
    assert (info.metadata["filterField"], info.metadata["operator"]) == ("status", ">")


@pytest.mark.parametrize(
    "filter_text",
    [
        "total > abc",
        "status = PAID",
        "due_date < 2030-13-01",
        "counterparty_id = nope",
        "id = txn_" + VALID_BODY,
        "overdue = yes",
        "tags > urgent",
        "total >",
        "(status = DRAFT",
        'notes:"unterminated',
        "status = DRAFT AND",
        "notes:\x00",
    ],
)
async def test_list_filter_malformed_is_invalid_argument(
    invoices: Stub, md: Metadata, filter_text: str
) -> None:
    await invalid(list_page(invoices, md, filter=filter_text), "filter")


async def test_list_show_deleted_includes_deleted_and_filter_still_applies(
    invoices: Stub, md: Metadata
) -> None:
    kept, doomed = await create_many(
        invoices, md, [sample_invoice(tags=["a"]), sample_invoice(tags=["a"])]
    )
    await invoices.DeleteInvoice(pb.DeleteInvoiceRequest(id=doomed.id), metadata=md)
    assert await list_ids(invoices, md, filter="tags:a") == {kept.id}
    assert await list_ids(invoices, md, filter="tags:a", show_deleted=True) == {
        kept.id,
        doomed.id,
    }
    page = await list_page(invoices, md, show_deleted=True, include_total=True)
    assert page.total == 2


# ---- app scoping ----------------------------------------------------------------------


async def test_app_tokens_see_only_their_apps_invoices_humans_see_all(
    invoices: Stub, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    app_a, app_b = tokens.md(tenant, app_id="app-a"), tokens.md(tenant, app_id="app-b")
    by_a, by_b, by_human = await asyncio.gather(
        create(invoices, app_a), create(invoices, app_b), create(invoices, md)
    )
    assert (by_a.app_id, by_b.app_id, by_human.app_id) == ("app-a", "app-b", "")

    assert await list_ids(invoices, app_a) == {by_a.id}
    assert await list_ids(invoices, app_b) == {by_b.id}
    assert await list_ids(invoices, md) == {by_a.id, by_b.id, by_human.id}
    assert (await list_page(invoices, app_a, include_total=True)).total == 1

    assert (await get(invoices, app_a, by_a.id)).id == by_a.id
    assert (await get(invoices, md, by_a.id)).id == by_a.id
    await fails(get(invoices, app_a, by_b.id), Code.NOT_FOUND)
    await fails(get(invoices, app_a, by_human.id), Code.NOT_FOUND)
    await fails(update(invoices, app_a, pb.Invoice(id=by_b.id, notes="x"), "notes"), Code.NOT_FOUND)
    await fails(issue(invoices, app_b, by_a.id), Code.NOT_FOUND)


# ---- rounding (ROUND_HALF_UP to the ISO 4217 minor unit), a fixed table ----------------

# (currency, lines as (quantity, unit_price, tax_rate, discount),
#  expected per line (subtotal, amount, tax), expected (subtotal, discount, tax, total))
ROUNDING_CASES: list[
    tuple[
        str,
        list[tuple[str, str, str, str]],
        list[tuple[str, str, str]],
        tuple[str, str, str, str],
    ]
] = [
    (
        "JPY",
        [("3", "0.5", "0.25", ""), ("1", "25", "0.1", "10")],
        [("2", "2", "1"), ("25", "15", "2")],  # 1.5 -> 2, 0.5 -> 1; 1.5 -> 2
        ("27", "10", "3", "20"),
    ),
    (
        "EUR",
        [("1", "0.125", "0", ""), ("3", "0.335", "0.5", ""), ("1", "10.00", "0.205", "0.50")],
        [("0.13", "0.13", "0.00"), ("1.01", "1.01", "0.51"), ("10.00", "9.50", "1.95")],
        ("11.14", "0.50", "2.46", "13.10"),
    ),
    (
        "EUR",
        [("0.000001", "5000", "0.2", ""), ("0.5", "0.01", "0.5", "")],
        [("0.01", "0.01", "0.00"), ("0.01", "0.01", "0.01")],  # 0.005 -> 0.01
        ("0.02", "0.00", "0.01", "0.03"),
    ),
    (
        "BHD",
        [("1", "0.0005", "0.5", ""), ("1.5", "1.001", "0.25", ""), ("1", "2", "0.1", "0.005")],
        [("0.001", "0.001", "0.001"), ("1.502", "1.502", "0.376"), ("2.000", "1.995", "0.200")],
        ("3.503", "0.005", "0.577", "4.075"),
    ),
    (
        "CLF",
        [("1", "0.00005", "0", ""), ("3", "0.33335", "0.5", ""), ("1", "1", "0.5", "0.0001")],
        [
            ("0.0001", "0.0001", "0.0000"),
            ("1.0001", "1.0001", "0.5001"),
            ("1.0000", "0.9999", "0.5000"),
        ],
        ("2.0002", "0.0001", "1.0001", "3.0002"),
    ),
]


@pytest.mark.parametrize(
    ("currency", "lines", "per_line", "totals"),
    ROUNDING_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(ROUNDING_CASES)],
)
async def test_create_rounds_half_up_to_currency_minor_unit(
    invoices: Stub,
    md: Metadata,
    currency: str,
    lines: list[tuple[str, str, str, str]],
    per_line: list[tuple[str, str, str]],
    totals: tuple[str, str, str, str],
) -> None:
    draft = sample_invoice(currency=currency, line_items=[line(*spec) for spec in lines])
    inv = await create(invoices, md, draft)

    assert [(li.subtotal, li.amount, li.tax_amount) for li in inv.line_items] == per_line
    assert (inv.subtotal, inv.discount_amount, inv.tax_amount, inv.total) == totals
    assert_totals_add_up(inv)
    for li in inv.line_items:
        assert money(li.amount) == money(li.subtotal) - money(li.discount_amount)
    # The stored row agrees with the response, and the client may echo the total back.
    assert await get(invoices, md, inv.id) == inv
    echoed = await create(
        invoices,
        md,
        sample_invoice(
            currency=currency, line_items=[line(*spec) for spec in lines], total=totals[3]
        ),
    )
    assert echoed.total == totals[3]
