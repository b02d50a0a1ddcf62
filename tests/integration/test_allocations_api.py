"""AllocationService (and InvoiceService.PayInvoice) over the real gRPC port and a real
PostgreSQL, nothing mocked. Asserts docs/allocations-contract.md.

Every test runs in its own random tenant (the `tenant` / `md` fixtures). Sections:

  helpers · transactions (create, validation, get, list, delete) · exchange rates
  · allocations (same currency, errors, idempotency, concurrency) · multi-currency
  (conversion, rounding, rate selection, accounting currency) · reversal · PayInvoice
  · workspace settings and explicit workspace_id · tenant and app isolation · permissions
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.type import date_pb2
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import invoices_pb2 as ipb

from tests.conftest import Tokens, error_info, rich_status
from tests.factories import (
    RECEIVABLE,
    Allocs,
    Code,
    Invoices,
    Metadata,
    as_date,
    as_dt,
    create_rate,
    create_txn,
    draft_invoice,
    fails,
    get_invoice,
    invalid,
    issued_invoice,
    mask,
    pdate,
    precondition,
    today_utc,
    ts,
)

PAYABLE = apb.TRANSACTION_DIRECTION_PAYABLE
FULL, PARTIAL = apb.ALLOCATION_TYPE_FULL, apb.ALLOCATION_TYPE_PARTIAL
UNPAID = ipb.PAYMENT_STATUS_UNPAID
PARTIALLY_PAID = ipb.PAYMENT_STATUS_PARTIALLY_PAID
PAID = ipb.PAYMENT_STATUS_PAID
PARTY_A = "0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11"  # sample_invoice's counterparty
PARTY_B = "5e0c7a1b-3f4d-4c2e-8b6a-9d1e2f3a4b5c"
VALID_BODY = "01JD6N8Q6Z7T3M3Y5C4V8R2K1P"  # 26 Crockford base32 characters
UNKNOWN_TXN = f"txn_{VALID_BODY}"
UNKNOWN_ALC = f"alc_{VALID_BODY}"
UNKNOWN_FXR = f"fxr_{VALID_BODY}"
UNKNOWN_INV = f"inv_{VALID_BODY}"
ETAG = re.compile(r'^W/"\d+"$')

APR_01, APR_15, APR_20, APR_25 = (date(2026, 4, d) for d in (1, 15, 20, 25))


# ---- helpers ----------------------------------------------------------------------


def half_up(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


async def count(admin: asyncpg.Connection, table: str, tenant: uuid.UUID) -> int:
    assert table in {"transactions", "allocations", "exchange_rates", "workspace_settings"}
    value = await admin.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant)
    return int(value)


async def get_txn(allocations: Allocs, md: Metadata, txn_id: str) -> apb.Transaction:
    result: apb.Transaction = await allocations.GetTransaction(
        apb.GetTransactionRequest(id=txn_id), metadata=md
    )
    return result


def allocation_request(
    invoice_id: str, transaction_id: str, amount: str, request_id: str = "", **fields: Any
) -> apb.CreateAllocationRequest:
    return apb.CreateAllocationRequest(
        allocation=apb.Allocation(
            invoice_id=invoice_id, transaction_id=transaction_id, amount=amount, **fields
        ),
        request_id=request_id,
    )


async def allocate(
    allocations: Allocs,
    md: Metadata,
    invoice_id: str,
    transaction_id: str,
    amount: str,
    **fields: Any,
) -> apb.Allocation:
    result: apb.Allocation = await allocations.CreateAllocation(
        allocation_request(invoice_id, transaction_id, amount, **fields), metadata=md
    )
    return result


async def reverse(
    allocations: Allocs, md: Metadata, allocation_id: str, etag: str = ""
) -> apb.Allocation:
    result: apb.Allocation = await allocations.DeleteAllocation(
        apb.DeleteAllocationRequest(id=allocation_id, etag=etag), metadata=md
    )
    return result


async def list_txn_ids(allocations: Allocs, md: Metadata, **kwargs: Any) -> list[str]:
    page = await allocations.ListTransactions(
        apb.ListTransactionsRequest(limit=200, **kwargs), metadata=md
    )
    assert page.next_cursor == ""
    return [t.id for t in page.data]


async def list_allocations(
    allocations: Allocs, md: Metadata, **kwargs: Any
) -> list[apb.Allocation]:
    page = await allocations.ListAllocations(
        apb.ListAllocationsRequest(limit=200, **kwargs), metadata=md
    )
    assert page.next_cursor == ""
    return list(page.data)


async def pay(invoices: Invoices, md: Metadata, invoice_id: str, **kwargs: Any) -> ipb.Invoice:
    result: ipb.Invoice = await invoices.PayInvoice(
        ipb.PayInvoiceRequest(id=invoice_id, **kwargs), metadata=md
    )
    return result


async def set_accounting_currency(
    allocations: Allocs, md: Metadata, currency: str
) -> apb.WorkspaceSettings:
    result: apb.WorkspaceSettings = await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(accounting_currency=currency),
            update_mask=mask("accounting_currency"),
        ),
        metadata=md,
    )
    return result


def assert_recent(stamp: timestamp_pb2.Timestamp, before: datetime) -> None:
    moment = as_dt(stamp)
    assert before - timedelta(seconds=5) <= moment <= datetime.now(UTC) + timedelta(seconds=5)


# ---- CreateTransaction ------------------------------------------------------------


async def test_create_transaction_normalizes_and_defaults(
    allocations: Allocs, md: Metadata, tenant: uuid.UUID
) -> None:
    subscription = str(uuid.uuid4())
    txn = await create_txn(
        allocations,
        md,
        amount="1250.5",
        currency="usd",
        reference="WIRE 42",
        counterparty_id=PARTY_A,
        subscription_id=subscription,
    )

    assert txn.id.startswith("txn_") and len(txn.id) == 30
    assert txn.tenant_id == str(tenant)
    assert txn.app_id == ""
    assert txn.direction == RECEIVABLE
    assert (txn.amount, txn.currency) == ("1250.50", "USD")
    assert (txn.allocated_amount, txn.unallocated_amount) == ("0.00", "1250.50")
    assert as_date(txn.value_date) == today_utc()
    assert txn.reference == "WIRE 42"
    assert (txn.counterparty_id, txn.subscription_id) == (PARTY_A, subscription)
    assert ETAG.match(txn.etag), txn.etag
    assert txn.created_by == txn.updated_by == "dev-user"
    assert txn.HasField("created_at") and txn.HasField("updated_at")
    assert not txn.HasField("deleted_at")
    assert await get_txn(allocations, md, txn.id) == txn


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("500", "JPY", "500"),
        ("1.5", "BHD", "1.500"),
        ("7", "EUR", "7.00"),
        ("0.001", "BHD", "0.001"),
    ],
)
async def test_create_transaction_formats_amount_to_the_currency_minor_unit(
    allocations: Allocs, md: Metadata, amount: str, currency: str, expected: str
) -> None:
    txn = await create_txn(allocations, md, amount=amount, currency=currency)
    assert (txn.amount, txn.unallocated_amount) == (expected, expected)


async def test_create_payable_transaction_with_explicit_value_date(
    allocations: Allocs, md: Metadata
) -> None:
    txn = await create_txn(allocations, md, direction=PAYABLE, value_date=APR_20)
    assert txn.direction == PAYABLE
    assert as_date(txn.value_date) == APR_20


BAD_TRANSACTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("amount_missing", {"amount": ""}, "transaction.amount"),
    ("currency_missing", {"currency": ""}, "transaction.currency"),
    ("direction_missing", {"direction": 0}, "transaction.direction"),
    ("amount_zero", {"amount": "0"}, "transaction.amount"),
    ("amount_zero_decimals", {"amount": "0.00"}, "transaction.amount"),
    ("amount_negative", {"amount": "-5.00"}, "transaction.amount"),
    ("amount_not_a_number", {"amount": "abc"}, "transaction.amount"),
    ("eur_three_places", {"amount": "10.001"}, "transaction.amount"),
    ("jpy_one_place", {"amount": "100.5", "currency": "JPY"}, "transaction.amount"),
    ("bhd_four_places", {"amount": "1.0001", "currency": "BHD"}, "transaction.amount"),
    ("unknown_currency", {"currency": "EUX"}, "transaction.currency"),
    ("malformed_counterparty", {"counterparty_id": "acme"}, "transaction.counterparty_id"),
    (
        "malformed_subscription",
        {"subscription_id": "sub-1"},
        "transaction.subscription_id",
    ),
    ("reference_too_long", {"reference": "r" * 256}, "transaction.reference"),
]


@pytest.mark.parametrize(
    ("fields", "field"), [c[1:] for c in BAD_TRANSACTIONS], ids=[c[0] for c in BAD_TRANSACTIONS]
)
async def test_create_transaction_with_bad_field_is_invalid_argument_and_writes_nothing(
    allocations: Allocs,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    fields: dict[str, Any],
    field: str,
) -> None:
    values: dict[str, Any] = {"amount": "100.00", "currency": "EUR", "direction": RECEIVABLE}
    values.update(fields)
    await invalid(
        allocations.CreateTransaction(
            apb.CreateTransactionRequest(transaction=apb.Transaction(**values)), metadata=md
        ),
        field,
    )
    assert await count(admin, "transactions", tenant) == 0


async def test_create_transaction_with_255_char_reference_is_accepted(
    allocations: Allocs, md: Metadata
) -> None:
    txn = await create_txn(allocations, md, reference="r" * 255)
    assert len(txn.reference) == 255


async def test_create_transaction_retried_with_same_request_id_writes_one(
    allocations: Allocs, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    key = str(uuid.uuid4())
    first = await create_txn(allocations, md, request_id=key)
    second = await create_txn(allocations, md, request_id=key)
    assert second.id == first.id
    assert await count(admin, "transactions", tenant) == 1

    await invalid(create_txn(allocations, md, amount="99.00", request_id=key), "request_id")
    assert await count(admin, "transactions", tenant) == 1


# ---- GetTransaction ---------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["txn_x", f"inv_{VALID_BODY}", f"alc_{VALID_BODY}", "", PARTY_A, "txn_" + "U" * 26],
    ids=["short", "inv_prefix", "alc_prefix", "empty", "plain_uuid", "not_crockford"],
)
async def test_get_transaction_with_malformed_id_is_invalid_argument(
    allocations: Allocs, md: Metadata, bad_id: str
) -> None:
    await invalid(
        allocations.GetTransaction(apb.GetTransactionRequest(id=bad_id), metadata=md), "id"
    )


async def test_get_unknown_transaction_is_not_found(allocations: Allocs, md: Metadata) -> None:
    await fails(get_txn(allocations, md, UNKNOWN_TXN), Code.NOT_FOUND)


# ---- ListTransactions -------------------------------------------------------------


async def _txn_world(allocations: Allocs, md: Metadata) -> dict[str, apb.Transaction]:
    """Five transactions created one after another (distinct created_at)."""
    specs: list[tuple[str, dict[str, Any]]] = [
        ("eur_small", {"amount": "10.00", "value_date": APR_01, "reference": "ACME invoice"}),
        (
            "usd_big",
            {"amount": "5000.00", "currency": "USD", "value_date": APR_15, "reference": "x-1"},
        ),
        ("eur_payable", {"amount": "250.00", "direction": PAYABLE, "value_date": APR_20}),
        (
            "jpy",
            {
                "amount": "30000",
                "currency": "JPY",
                "value_date": APR_25,
                "counterparty_id": PARTY_B,
            },
        ),
        ("eur_mid", {"amount": "120.00", "value_date": APR_20, "reference": "acme refund"}),
    ]
    world: dict[str, apb.Transaction] = {}
    for name, spec in specs:
        world[name] = await create_txn(allocations, md, **spec)
    return world


async def test_list_transactions_default_order_is_created_at_desc_and_paginates(
    allocations: Allocs, md: Metadata
) -> None:
    world = await _txn_world(allocations, md)
    created = [t.id for t in world.values()]

    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = await allocations.ListTransactions(
            apb.ListTransactionsRequest(limit=2, cursor=cursor, include_total=True), metadata=md
        )
        assert page.total == 5
        assert len(page.data) <= 2
        seen += [t.id for t in page.data]
        pages += 1
        cursor = page.next_cursor
        if not cursor:
            break
        assert pages < 10
    assert pages == 3
    assert seen == list(reversed(created))


async def test_list_transactions_order_by_amount_ascending_across_pages(
    allocations: Allocs, md: Metadata
) -> None:
    world = await _txn_world(allocations, md)
    first = await allocations.ListTransactions(
        apb.ListTransactionsRequest(limit=3, order_by="amount", direction="asc"), metadata=md
    )
    rest = await allocations.ListTransactions(
        apb.ListTransactionsRequest(
            limit=3, order_by="amount", direction="asc", cursor=first.next_cursor
        ),
        metadata=md,
    )
    assert rest.next_cursor == ""
    got = [t.id for t in (*first.data, *rest.data)]
    expected = [t.id for t in sorted(world.values(), key=lambda t: Decimal(t.amount))]
    assert got == expected

    by_id = {t.id: t for t in world.values()}
    aip = await list_txn_ids(allocations, md, order_by="value_date desc")
    assert len(aip) == 5
    dates = [as_date(by_id[i].value_date) for i in aip]
    assert dates == sorted(dates, reverse=True)


async def test_list_transactions_unknown_order_by_is_invalid_argument(
    allocations: Allocs, md: Metadata
) -> None:
    await invalid(
        allocations.ListTransactions(apb.ListTransactionsRequest(order_by="colour"), metadata=md),
        "order_by",
    )


TXN_FILTERS: list[tuple[str, set[str]]] = [
    ("direction = RECEIVABLE", {"eur_small", "usd_big", "jpy", "eur_mid"}),
    ("direction = PAYABLE", {"eur_payable"}),
    ("currency = USD", {"usd_big"}),
    ("currency IN (JPY, USD)", {"usd_big", "jpy"}),
    ("amount > 200", {"usd_big", "eur_payable", "jpy"}),
    ("direction = RECEIVABLE AND unallocated_amount > 100", {"usd_big", "jpy", "eur_mid"}),
    ('value_date >= "2026-04-20"', {"eur_payable", "jpy", "eur_mid"}),
    ('value_date < "2026-04-15"', {"eur_small"}),
    ('reference:"acme"', {"eur_small", "eur_mid"}),
    ('reference = "x-*"', {"usd_big"}),
    (f"counterparty_id = {PARTY_B}", {"jpy"}),
    ("deleted_at IS NULL", {"eur_small", "usd_big", "eur_payable", "jpy", "eur_mid"}),
]


@pytest.mark.parametrize(("filter_text", "expected"), TXN_FILTERS, ids=[c[0] for c in TXN_FILTERS])
async def test_list_transactions_filter_selects_matching(
    allocations: Allocs, md: Metadata, filter_text: str, expected: set[str]
) -> None:
    world = await _txn_world(allocations, md)
    got = await list_txn_ids(allocations, md, filter=filter_text)
    assert {name for name, t in world.items() if t.id in got} == expected
    assert len(got) == len(expected)


async def test_list_transactions_filter_by_id(allocations: Allocs, md: Metadata) -> None:
    first = await create_txn(allocations, md)
    second = await create_txn(allocations, md)
    assert await list_txn_ids(allocations, md, filter=f'id = "{second.id}"') == [second.id]
    assert await list_txn_ids(allocations, md, filter=f'id != "{second.id}"') == [first.id]


@pytest.mark.parametrize(
    ("filter_text", "field", "operator"),
    [('reference > "a"', "reference", ">"), ("direction > RECEIVABLE", "direction", ">")],
)
async def test_list_transactions_disallowed_operator_is_invalid_argument(
    allocations: Allocs, md: Metadata, filter_text: str, field: str, operator: str
) -> None:
    err = await invalid(
        allocations.ListTransactions(apb.ListTransactionsRequest(filter=filter_text), metadata=md),
        "filter",
        "UNSUPPORTED_FILTER_OPERATOR",
    )
    info = error_info(err)
    assert (info.metadata["filterField"], info.metadata["operator"]) == (field, operator)


async def test_list_transactions_unknown_filter_field_is_invalid_argument(
    allocations: Allocs, md: Metadata
) -> None:
    err = await invalid(
        allocations.ListTransactions(
            apb.ListTransactionsRequest(filter="colour = red"), metadata=md
        ),
        "filter",
        "UNKNOWN_FILTER_FIELD",
    )
    assert error_info(err).metadata["filterField"] == "colour"


async def test_list_transactions_negative_limit_is_invalid_argument(
    allocations: Allocs, md: Metadata
) -> None:
    await invalid(
        allocations.ListTransactions(apb.ListTransactionsRequest(limit=-1), metadata=md), "limit"
    )


# ---- DeleteTransaction ------------------------------------------------------------


async def test_delete_transaction_is_soft_and_twice_is_not_found(
    allocations: Allocs, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    kept = await create_txn(allocations, md)
    doomed = await create_txn(allocations, md)
    deleted = await allocations.DeleteTransaction(
        apb.DeleteTransactionRequest(id=doomed.id, etag=doomed.etag), metadata=md
    )

    assert deleted.id == doomed.id
    assert deleted.HasField("deleted_at")
    assert deleted.deleted_by == "dev-user"
    assert await count(admin, "transactions", tenant) == 2  # soft
    assert await list_txn_ids(allocations, md) == [kept.id]
    assert set(await list_txn_ids(allocations, md, show_deleted=True)) == {kept.id, doomed.id}
    fetched = await get_txn(allocations, md, doomed.id)
    assert fetched.HasField("deleted_at") and fetched.id == doomed.id

    await fails(
        allocations.DeleteTransaction(apb.DeleteTransactionRequest(id=doomed.id), metadata=md),
        Code.NOT_FOUND,
    )


async def test_delete_transaction_with_live_allocation_is_refused_until_reversed(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, amount="300.00")
    alloc = await allocate(allocations, md, inv.id, txn.id, "120.00")

    meta = await precondition(
        allocations.DeleteTransaction(apb.DeleteTransactionRequest(id=txn.id), metadata=md),
        "TRANSACTION_HAS_ALLOCATIONS",
    )
    assert meta["allocatedAmount"] == "120.00"
    assert not (await get_txn(allocations, md, txn.id)).HasField("deleted_at")

    await reverse(allocations, md, alloc.id)
    deleted = await allocations.DeleteTransaction(
        apb.DeleteTransactionRequest(id=txn.id), metadata=md
    )
    assert deleted.HasField("deleted_at")
    assert deleted.allocated_amount == "0.00"


async def test_delete_transaction_with_stale_etag_is_aborted(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    alloc = await allocate(allocations, md, inv.id, txn.id, "10.00")
    await reverse(allocations, md, alloc.id)  # two allocation changes: the etag moved on
    current = await get_txn(allocations, md, txn.id)
    assert current.etag != txn.etag

    err = await fails(
        allocations.DeleteTransaction(
            apb.DeleteTransactionRequest(id=txn.id, etag=txn.etag), metadata=md
        ),
        Code.ABORTED,
    )
    assert error_info(err).reason == "ETAG_MISMATCH"
    assert not (await get_txn(allocations, md, txn.id)).HasField("deleted_at")

    deleted = await allocations.DeleteTransaction(
        apb.DeleteTransactionRequest(id=txn.id, etag=current.etag), metadata=md
    )
    assert deleted.HasField("deleted_at")


async def test_deleted_transaction_cannot_be_allocated(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    await allocations.DeleteTransaction(apb.DeleteTransactionRequest(id=txn.id), metadata=md)
    await fails(allocate(allocations, md, inv.id, txn.id, "10.00"), Code.NOT_FOUND)


# ---- exchange rates -----------------------------------------------------------------


async def test_create_exchange_rate_normalizes_rate_and_defaults_source(
    allocations: Allocs, md: Metadata, tenant: uuid.UUID
) -> None:
    created = await allocations.CreateExchangeRate(
        apb.CreateExchangeRateRequest(
            exchange_rate=apb.ExchangeRate(
                base_currency="usd", quote_currency="EUR", rate="0.9200", rate_date=pdate(APR_01)
            )
        ),
        metadata=md,
    )
    assert created.id.startswith("fxr_") and len(created.id) == 30
    assert created.tenant_id == str(tenant)
    assert (created.base_currency, created.quote_currency) == ("USD", "EUR")
    assert created.rate == "0.92"
    assert as_date(created.rate_date) == APR_01
    assert created.source == "manual"
    assert created.created_by == "dev-user"
    assert created.HasField("created_at")
    fetched = await allocations.GetExchangeRate(
        apb.GetExchangeRateRequest(id=created.id), metadata=md
    )
    assert fetched == created


@pytest.mark.parametrize(
    ("rate", "expected"),
    [("160.0000000000", "160"), ("0.1234567891", "0.1234567891"), ("2.4390", "2.439")],
)
async def test_exchange_rate_is_returned_without_trailing_zeros(
    allocations: Allocs, md: Metadata, rate: str, expected: str
) -> None:
    assert (await create_rate(allocations, md, "EUR", "JPY", rate)).rate == expected


async def test_duplicate_exchange_rate_is_already_exists(
    allocations: Allocs, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    await create_rate(allocations, md, "USD", "EUR", "0.92", source="ecb")
    err = await fails(
        create_rate(allocations, md, "USD", "EUR", "0.93", source="ecb"), Code.ALREADY_EXISTS
    )
    assert error_info(err).reason == "EXCHANGE_RATE_EXISTS"
    # Another source, date or direction is a different rate.
    await create_rate(allocations, md, "USD", "EUR", "0.93", source="bank")
    await create_rate(allocations, md, "USD", "EUR", "0.93", on=APR_15, source="ecb")
    await create_rate(allocations, md, "EUR", "USD", "1.08", source="ecb")
    assert await count(admin, "exchange_rates", tenant) == 4


async def test_exchange_rate_with_same_base_and_quote_is_invalid_argument(
    allocations: Allocs, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    await invalid(
        create_rate(allocations, md, "EUR", "eur", "1"),
        "exchange_rate.quote_currency",
        "SAME_CURRENCY",
    )
    assert await count(admin, "exchange_rates", tenant) == 0


BAD_RATES: list[tuple[str, dict[str, Any], str]] = [
    ("rate_zero", {"rate": "0"}, "exchange_rate.rate"),
    ("rate_negative", {"rate": "-0.92"}, "exchange_rate.rate"),
    ("rate_eleven_places", {"rate": "0.12345678901"}, "exchange_rate.rate"),
    ("rate_missing", {"rate": ""}, "exchange_rate.rate"),
    ("rate_not_a_number", {"rate": "abc"}, "exchange_rate.rate"),
    ("base_unknown", {"base_currency": "EUX"}, "exchange_rate.base_currency"),
    ("quote_unknown", {"quote_currency": "EUX"}, "exchange_rate.quote_currency"),
    ("base_missing", {"base_currency": ""}, "exchange_rate.base_currency"),
    ("source_too_long", {"source": "s" * 65}, "exchange_rate.source"),
    (
        "date_invalid",
        {"rate_date": date_pb2.Date(year=2026, month=2, day=30)},
        "exchange_rate.rate_date",
    ),
]


@pytest.mark.parametrize(
    ("fields", "field"), [c[1:] for c in BAD_RATES], ids=[c[0] for c in BAD_RATES]
)
async def test_create_exchange_rate_with_bad_field_is_invalid_argument(
    allocations: Allocs,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    fields: dict[str, Any],
    field: str,
) -> None:
    values: dict[str, Any] = {
        "base_currency": "USD",
        "quote_currency": "EUR",
        "rate": "0.92",
        "rate_date": pdate(APR_01),
    }
    values.update(fields)
    await invalid(
        allocations.CreateExchangeRate(
            apb.CreateExchangeRateRequest(exchange_rate=apb.ExchangeRate(**values)), metadata=md
        ),
        field,
    )
    assert await count(admin, "exchange_rates", tenant) == 0


async def test_exchange_rate_missing_date_is_invalid_argument(
    allocations: Allocs, md: Metadata
) -> None:
    await invalid(
        allocations.CreateExchangeRate(
            apb.CreateExchangeRateRequest(
                exchange_rate=apb.ExchangeRate(base_currency="USD", quote_currency="EUR", rate="1")
            ),
            metadata=md,
        ),
        "exchange_rate.rate_date",
    )


async def test_get_unknown_exchange_rate_is_not_found(allocations: Allocs, md: Metadata) -> None:
    err = await fails(
        allocations.GetExchangeRate(apb.GetExchangeRateRequest(id=UNKNOWN_FXR), metadata=md),
        Code.NOT_FOUND,
    )
    assert error_info(err).reason == "EXCHANGE_RATE_NOT_FOUND"
    await invalid(
        allocations.GetExchangeRate(apb.GetExchangeRateRequest(id=UNKNOWN_TXN), metadata=md), "id"
    )


async def test_list_exchange_rates_with_filter_and_order(allocations: Allocs, md: Metadata) -> None:
    usd_1 = await create_rate(allocations, md, "USD", "EUR", "0.90", on=APR_01)
    usd_2 = await create_rate(allocations, md, "USD", "EUR", "0.92", on=APR_15)
    usd_3 = await create_rate(allocations, md, "USD", "EUR", "0.95", on=APR_25)
    jpy = await create_rate(allocations, md, "EUR", "JPY", "160", on=APR_15, source="boj")

    async def ids(**kwargs: Any) -> list[str]:
        page = await allocations.ListExchangeRates(
            apb.ListExchangeRatesRequest(limit=200, **kwargs), metadata=md
        )
        return [r.id for r in page.data]

    assert await ids(
        filter='base_currency = "USD" AND quote_currency = "EUR" AND rate_date <= "2026-04-20"',
        order_by="rate_date desc",
    ) == [usd_2.id, usd_1.id]
    assert await ids(filter="quote_currency = JPY") == [jpy.id]
    assert await ids(filter='source = "boj"') == [jpy.id]
    assert set(await ids(filter="rate > 1")) == {jpy.id}
    assert await ids(order_by="rate_date", direction="asc", filter="base_currency = USD") == [
        usd_1.id,
        usd_2.id,
        usd_3.id,
    ]
    page = await allocations.ListExchangeRates(
        apb.ListExchangeRatesRequest(limit=2, include_total=True), metadata=md
    )
    assert page.total == 4 and len(page.data) == 2 and page.next_cursor
    rest = await allocations.ListExchangeRates(
        apb.ListExchangeRatesRequest(limit=2, cursor=page.next_cursor), metadata=md
    )
    assert {r.id for r in (*page.data, *rest.data)} == {usd_1.id, usd_2.id, usd_3.id, jpy.id}
    await invalid(
        allocations.ListExchangeRates(
            apb.ListExchangeRatesRequest(filter='source > "a"'), metadata=md
        ),
        "filter",
        "UNSUPPORTED_FILTER_OPERATOR",
    )


# ---- CreateAllocation: same currency ----------------------------------------------


async def test_partial_then_full_allocation_updates_invoice_and_transaction(
    allocations: Allocs, invoices: Invoices, md: Metadata, tenant: uuid.UUID
) -> None:
    inv = await issued_invoice(invoices, md)
    assert (inv.total, inv.amount_paid, inv.payment_status) == ("1440.00", "0.00", UNPAID)
    subscription = str(uuid.uuid4())
    txn = await create_txn(allocations, md, amount="2000.00", subscription_id=subscription)

    first = await allocate(allocations, md, inv.id, txn.id, "440.00")
    assert first.id.startswith("alc_") and len(first.id) == 30
    assert first.invoice_transaction_id == first.id
    assert first.tenant_id == first.workspace_id == str(tenant)
    assert (first.invoice_id, first.transaction_id) == (inv.id, txn.id)
    assert (first.amount, first.currency) == ("440.00", "EUR")
    assert (first.invoice_amount, first.invoice_currency) == ("440.00", "EUR")
    assert (first.accounting_amount, first.accounting_currency) == ("440.00", "EUR")
    assert first.allocation_type == PARTIAL and first.is_partial
    assert first.exchange_rate_id == "" and first.accounting_exchange_rate_id == ""
    assert first.composite_fx_rate == ""
    assert first.composite_invoice_transaction_summary == (
        f"{inv.number} <- {txn.id} 440.00 EUR (partial)"
    )
    assert first.subscription_id == subscription
    assert first.created_by == "dev-user"
    assert not first.HasField("deleted_at")

    mid = await get_invoice(invoices, md, inv.id)
    assert (mid.amount_paid, mid.amount_due, mid.payment_status) == (
        "440.00",
        "1000.00",
        PARTIALLY_PAID,
    )
    assert not mid.HasField("paid_at")
    txn_mid = await get_txn(allocations, md, txn.id)
    assert (txn_mid.allocated_amount, txn_mid.unallocated_amount) == ("440.00", "1560.00")
    assert txn_mid.etag != txn.etag

    before = datetime.now(UTC)
    second = await allocate(allocations, md, inv.id, txn.id, "1000.00")
    assert second.allocation_type == FULL and not second.is_partial
    assert second.composite_invoice_transaction_summary == (
        f"{inv.number} <- {txn.id} 1000.00 EUR (full)"
    )
    paid = await get_invoice(invoices, md, inv.id)
    assert (paid.amount_paid, paid.amount_due, paid.payment_status) == ("1440.00", "0.00", PAID)
    assert paid.HasField("paid_at")
    assert_recent(paid.paid_at, before)
    txn_end = await get_txn(allocations, md, txn.id)
    assert (txn_end.allocated_amount, txn_end.unallocated_amount) == ("1440.00", "560.00")
    assert txn_end.etag != txn_mid.etag

    fetched = await allocations.GetAllocation(apb.GetAllocationRequest(id=second.id), metadata=md)
    assert fetched == second


async def test_allocation_currency_may_be_sent_when_equal(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    alloc = await allocate(allocations, md, inv.id, txn.id, "100", currency="EUR")
    assert (alloc.amount, alloc.currency, alloc.invoice_amount) == ("100.00", "EUR", "100.00")


async def test_supplier_invoice_is_settled_by_a_payable_transaction(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md, type=ipb.INVOICE_TYPE_SUPPLIER, number="SUP-7")
    txn = await create_txn(allocations, md, amount="1440.00", direction=PAYABLE)
    alloc = await allocate(allocations, md, inv.id, txn.id, "1440.00")
    assert alloc.allocation_type == FULL
    assert (await get_invoice(invoices, md, inv.id)).payment_status == PAID


async def test_one_transaction_can_pay_several_invoices(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    one, two = await asyncio.gather(issued_invoice(invoices, md), issued_invoice(invoices, md))
    txn = await create_txn(allocations, md, amount="2880.00")
    await allocate(allocations, md, one.id, txn.id, "1440.00")
    await allocate(allocations, md, two.id, txn.id, "1440.00")
    after = await get_txn(allocations, md, txn.id)
    assert (after.allocated_amount, after.unallocated_amount) == ("2880.00", "0.00")
    await precondition(
        allocate(allocations, md, one.id, txn.id, "0.01"), "AMOUNT_EXCEEDS_UNALLOCATED"
    )


# ---- CreateAllocation: errors (and nothing written) ----------------------------------


async def _assert_nothing_allocated(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    inv: ipb.Invoice,
    txn: apb.Transaction,
    allocations_before: int = 0,
) -> None:
    assert await count(admin, "allocations", tenant) == allocations_before
    now_inv = await get_invoice(invoices, md, inv.id)
    assert (now_inv.amount_paid, now_inv.payment_status, now_inv.etag) == (
        inv.amount_paid,
        inv.payment_status,
        inv.etag,
    )
    now_txn = await get_txn(allocations, md, txn.id)
    assert (now_txn.allocated_amount, now_txn.etag) == (txn.allocated_amount, txn.etag)


async def test_allocation_to_draft_invoice_is_not_payable(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await draft_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    meta = await precondition(
        allocate(allocations, md, inv.id, txn.id, "10.00"), "INVOICE_NOT_PAYABLE"
    )
    assert meta["status"].lower() == "draft"
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_allocation_to_void_invoice_is_not_payable(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    issued = await issued_invoice(invoices, md)
    inv = await invoices.VoidInvoice(ipb.VoidInvoiceRequest(id=issued.id), metadata=md)
    txn = await create_txn(allocations, md)
    meta = await precondition(
        allocate(allocations, md, inv.id, txn.id, "10.00"), "INVOICE_NOT_PAYABLE"
    )
    assert meta["status"].lower() == "void"
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_allocation_to_deleted_draft_is_invoice_not_found(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await draft_invoice(invoices, md)
    await invoices.DeleteInvoice(ipb.DeleteInvoiceRequest(id=inv.id), metadata=md)
    txn = await create_txn(allocations, md)
    err = await fails(allocate(allocations, md, inv.id, txn.id, "10.00"), Code.NOT_FOUND)
    assert error_info(err).reason == "INVOICE_NOT_FOUND"


async def test_payable_transaction_to_customer_invoice_is_direction_mismatch(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, direction=PAYABLE)
    await precondition(allocate(allocations, md, inv.id, txn.id, "10.00"), "DIRECTION_MISMATCH")
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_receivable_transaction_to_supplier_invoice_is_direction_mismatch(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md, type=ipb.INVOICE_TYPE_SUPPLIER, number="S-1")
    txn = await create_txn(allocations, md, direction=RECEIVABLE)
    await precondition(allocate(allocations, md, inv.id, txn.id, "10.00"), "DIRECTION_MISMATCH")


async def test_allocation_over_unallocated_amount_is_refused_with_metadata(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    one, two = await asyncio.gather(issued_invoice(invoices, md), issued_invoice(invoices, md))
    txn = await create_txn(allocations, md, amount="100.00")
    await allocate(allocations, md, one.id, txn.id, "60.00")
    txn = await get_txn(allocations, md, txn.id)
    meta = await precondition(
        allocate(allocations, md, two.id, txn.id, "50.00"), "AMOUNT_EXCEEDS_UNALLOCATED"
    )
    assert (meta["amount"], meta["unallocatedAmount"], meta["currency"]) == (
        "50.00",
        "40.00",
        "EUR",
    )
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, two, txn, 1)


async def test_allocation_over_amount_due_is_refused_with_metadata(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, amount="2000.00")
    await allocate(allocations, md, inv.id, txn.id, "1000.00")
    inv = await get_invoice(invoices, md, inv.id)
    txn = await get_txn(allocations, md, txn.id)
    meta = await precondition(
        allocate(allocations, md, inv.id, txn.id, "440.01"), "AMOUNT_EXCEEDS_AMOUNT_DUE"
    )
    keys = ("invoiceAmount", "amountDue", "amountPaid", "total", "currency")
    assert {k: meta.get(k) for k in keys} == {
        "invoiceAmount": "440.01",
        "amountDue": "440.00",
        "amountPaid": "1000.00",
        "total": "1440.00",
        "currency": "EUR",
    }
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn, 1)


async def test_unallocated_check_comes_before_amount_due_check(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, amount="100.00")
    # 1500.00 exceeds both the transaction (100.00) and the amount due (1440.00).
    await precondition(
        allocate(allocations, md, inv.id, txn.id, "1500.00"), "AMOUNT_EXCEEDS_UNALLOCATED"
    )


async def test_allocation_currency_differing_from_transaction_is_currency_mismatch(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    await invalid(
        allocate(allocations, md, inv.id, txn.id, "10.00", currency="USD"),
        "allocation.currency",
        "CURRENCY_MISMATCH",
    )
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


@pytest.mark.parametrize(
    ("amount", "currency"),
    [("0", "EUR"), ("-1.00", "EUR"), ("10.001", "EUR"), ("", "EUR"), ("1.5", "JPY"), ("x", "EUR")],
    ids=["zero", "negative", "eur_three_places", "missing", "jpy_fraction", "not_a_number"],
)
async def test_allocation_with_bad_amount_is_invalid_argument(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    amount: str,
    currency: str,
) -> None:
    inv = await issued_invoice(invoices, md, currency=currency)
    txn = await create_txn(allocations, md, amount="1000", currency=currency)
    await invalid(allocate(allocations, md, inv.id, txn.id, amount), "allocation.amount")
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_allocation_with_unknown_ids_is_not_found(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    err = await fails(allocate(allocations, md, UNKNOWN_INV, txn.id, "1.00"), Code.NOT_FOUND)
    assert error_info(err).reason == "INVOICE_NOT_FOUND"
    await fails(allocate(allocations, md, inv.id, UNKNOWN_TXN, "1.00"), Code.NOT_FOUND)
    assert await count(admin, "allocations", tenant) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"invoice_id": "inv_x"}, "allocation.invoice_id"),
        ({"invoice_id": ""}, "allocation.invoice_id"),
        ({"invoice_id": f"txn_{VALID_BODY}"}, "allocation.invoice_id"),
        ({"transaction_id": "txn_x"}, "allocation.transaction_id"),
        ({"transaction_id": ""}, "allocation.transaction_id"),
        ({"transaction_id": f"inv_{VALID_BODY}"}, "allocation.transaction_id"),
        ({"exchange_rate_id": "fxr_x"}, "allocation.exchange_rate_id"),
        ({"exchange_rate_id": f"alc_{VALID_BODY}"}, "allocation.exchange_rate_id"),
        ({"subscription_id": "sub-1"}, "allocation.subscription_id"),
    ],
    ids=[
        "invoice_malformed",
        "invoice_missing",
        "invoice_wrong_prefix",
        "transaction_malformed",
        "transaction_missing",
        "transaction_wrong_prefix",
        "rate_malformed",
        "rate_wrong_prefix",
        "subscription_malformed",
    ],
)
async def test_allocation_with_malformed_id_is_invalid_argument(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    fields: dict[str, str],
    field: str,
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    values = {"invoice_id": inv.id, "transaction_id": txn.id} | fields
    await invalid(
        allocations.CreateAllocation(
            apb.CreateAllocationRequest(allocation=apb.Allocation(amount="1.00", **values)),
            metadata=md,
        ),
        field,
    )
    assert await count(admin, "allocations", tenant) == 0


async def test_allocation_request_id_replays_and_rejects_a_different_body(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, amount="500.00")
    key = str(uuid.uuid4())
    first = await allocations.CreateAllocation(
        allocation_request(inv.id, txn.id, "100.00", request_id=key), metadata=md
    )
    again = await allocations.CreateAllocation(
        allocation_request(inv.id, txn.id, "100.00", request_id=key), metadata=md
    )
    assert again.id == first.id
    assert await count(admin, "allocations", tenant) == 1
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "100.00"

    err = await invalid(
        allocations.CreateAllocation(
            allocation_request(inv.id, txn.id, "200.00", request_id=key), metadata=md
        ),
        "request_id",
    )
    assert error_info(err).reason == "REQUEST_ID_REUSED"
    assert await count(admin, "allocations", tenant) == 1
    assert (await get_txn(allocations, md, txn.id)).allocated_amount == "100.00"


async def test_concurrent_allocations_never_exceed_the_invoice_total(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txns = await asyncio.gather(*(create_txn(allocations, md, "300.00") for _ in range(8)))
    results = await asyncio.gather(
        *(allocate(allocations, md, inv.id, t.id, "300.00") for t in txns),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, apb.Allocation)]
    lost = [r for r in results if not isinstance(r, apb.Allocation)]
    assert len(won) == 4  # 4 x 300 = 1200 <= 1440 < 1500
    for err in lost:
        assert isinstance(err, grpc.aio.AioRpcError), err
        assert err.code() == Code.FAILED_PRECONDITION, err.details()
        assert error_info(err).reason == "AMOUNT_EXCEEDS_AMOUNT_DUE"
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "1200.00"


async def test_concurrent_allocations_never_exceed_the_transaction_amount(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    invs = await asyncio.gather(*(issued_invoice(invoices, md) for _ in range(6)))
    txn = await create_txn(allocations, md, amount="1000.00")
    results = await asyncio.gather(
        *(allocate(allocations, md, i.id, txn.id, "400.00") for i in invs),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, apb.Allocation)]
    assert len(won) == 2
    for err in results:
        if not isinstance(err, apb.Allocation):
            assert isinstance(err, grpc.aio.AioRpcError), err
            assert error_info(err).reason == "AMOUNT_EXCEEDS_UNALLOCATED"
    assert (await get_txn(allocations, md, txn.id)).allocated_amount == "800.00"


# ---- multi-currency -----------------------------------------------------------------


async def test_eur_invoice_paid_with_usd_jpy_and_bhd(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    usd_rate = await create_rate(allocations, md, "USD", "EUR", "0.92")  # 1 USD = 0.92 EUR
    jpy_rate = await create_rate(allocations, md, "EUR", "JPY", "160")  # 1 EUR = 160 JPY
    bhd_rate = await create_rate(allocations, md, "BHD", "EUR", "2.4390")  # 1 BHD = 2.439 EUR
    usd, jpy, bhd = await asyncio.gather(
        create_txn(allocations, md, "500.00", "USD", value_date=APR_20),
        create_txn(allocations, md, "12004", "JPY", value_date=APR_20),
        create_txn(allocations, md, "371.043", "BHD", value_date=APR_20),
    )

    # USD -> EUR, base -> quote: x * r.
    expected_usd = half_up(Decimal("500.00") * Decimal("0.92"), 2)
    assert expected_usd == Decimal("460.00")
    by_usd = await allocate(allocations, md, inv.id, usd.id, "500.00")
    assert (by_usd.amount, by_usd.currency) == ("500.00", "USD")
    assert (by_usd.invoice_amount, by_usd.invoice_currency) == (str(expected_usd), "EUR")
    assert (by_usd.accounting_amount, by_usd.accounting_currency) == (str(expected_usd), "EUR")
    assert by_usd.exchange_rate_id == usd_rate.id
    assert by_usd.accounting_exchange_rate_id == ""
    assert by_usd.composite_fx_rate == "1 USD = 0.92 EUR (ecb, 2026-04-01)"
    assert by_usd.allocation_type == PARTIAL
    assert by_usd.composite_invoice_transaction_summary == (
        f"{inv.number} <- {usd.id} 500.00 USD (partial)"
    )

    # JPY -> EUR with 1 EUR = 160 JPY, quote -> base: x / r; 75.025 rounds half up.
    expected_jpy = half_up(Decimal("12004") / Decimal("160"), 2)
    assert expected_jpy == Decimal("75.03")
    by_jpy = await allocate(allocations, md, inv.id, jpy.id, "12004")
    assert (by_jpy.amount, by_jpy.currency) == ("12004", "JPY")
    assert by_jpy.invoice_amount == str(expected_jpy)
    assert by_jpy.accounting_amount == str(expected_jpy)
    assert by_jpy.exchange_rate_id == jpy_rate.id
    assert by_jpy.composite_fx_rate == "1 EUR = 160 JPY (ecb, 2026-04-01)"

    mid = await get_invoice(invoices, md, inv.id)
    due = Decimal("1440.00") - expected_usd - expected_jpy
    assert (mid.amount_paid, mid.amount_due, mid.payment_status) == (
        str(expected_usd + expected_jpy),
        str(due),
        PARTIALLY_PAID,
    )

    # BHD -> EUR: 371.043 x 2.439 = 904.973877 -> 904.97, exactly the amount due.
    expected_bhd = half_up(Decimal("371.043") * Decimal("2.439"), 2)
    assert expected_bhd == due == Decimal("904.97")
    by_bhd = await allocate(allocations, md, inv.id, bhd.id, "371.043")
    assert (by_bhd.amount, by_bhd.currency) == ("371.043", "BHD")
    assert by_bhd.invoice_amount == "904.97"
    assert by_bhd.exchange_rate_id == bhd_rate.id
    assert by_bhd.composite_fx_rate == "1 BHD = 2.439 EUR (ecb, 2026-04-01)"
    assert by_bhd.allocation_type == FULL and not by_bhd.is_partial

    paid = await get_invoice(invoices, md, inv.id)
    assert (paid.amount_paid, paid.amount_due, paid.payment_status) == ("1440.00", "0.00", PAID)
    assert paid.HasField("paid_at")
    bhd_after = await get_txn(allocations, md, bhd.id)
    assert (bhd_after.allocated_amount, bhd_after.unallocated_amount) == ("371.043", "0.000")


# (invoice currency, transaction currency and amount, rate (base, quote, rate), expected)
ROUNDING: list[tuple[str, str, str, tuple[str, str, str], str]] = [
    ("EUR", "USD", "0.05", ("USD", "EUR", "0.5"), "0.03"),  # 0.025 -> 0.03 (not 0.02)
    ("EUR", "USD", "0.01", ("USD", "EUR", "0.5"), "0.01"),  # 0.005 -> 0.01
    ("EUR", "JPY", "4", ("EUR", "JPY", "160"), "0.03"),  # 4 / 160 = 0.025
    ("EUR", "BHD", "15.000", ("BHD", "EUR", "2.4390"), "36.59"),  # 36.585
    ("EUR", "USD", "123.45", ("USD", "EUR", "0.92"), "113.57"),  # 113.574
    ("EUR", "USD", "100.00", ("EUR", "USD", "1.08"), "92.59"),  # 92.592592...
    ("JPY", "EUR", "0.03", ("EUR", "JPY", "160"), "5"),  # 4.8 -> 5
    ("JPY", "EUR", "1.00", ("JPY", "EUR", "0.0064"), "156"),  # 156.25 -> 156
    ("BHD", "EUR", "100.00", ("BHD", "EUR", "2.439"), "41.000"),  # 41.00041
    ("BHD", "EUR", "0.01", ("BHD", "EUR", "2.439"), "0.004"),  # 0.0041
]


@pytest.mark.parametrize(
    ("invoice_currency", "txn_currency", "amount", "rate", "expected"),
    ROUNDING,
    ids=[f"{r[2]}_{r[1]}_to_{r[0]}_via_{'_'.join(r[3])}" for r in ROUNDING],
)
async def test_conversion_rounds_half_up_to_the_invoice_currency_minor_unit(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    invoice_currency: str,
    txn_currency: str,
    amount: str,
    rate: tuple[str, str, str],
    expected: str,
) -> None:
    base, quote, value = rate
    places = {"EUR": 2, "JPY": 0, "BHD": 3}[invoice_currency]
    x, r = Decimal(amount), Decimal(value)
    computed = half_up(x * r if base == txn_currency else x / r, places)
    assert str(computed) == expected  # the table agrees with the contract's formula

    inv = await issued_invoice(invoices, md, currency=invoice_currency)
    fxr = await create_rate(allocations, md, base, quote, value)
    txn = await create_txn(allocations, md, amount, txn_currency, value_date=APR_20)
    alloc = await allocate(allocations, md, inv.id, txn.id, amount)
    assert (alloc.invoice_amount, alloc.invoice_currency) == (expected, invoice_currency)
    assert alloc.exchange_rate_id == fxr.id
    after = await get_invoice(invoices, md, inv.id)
    assert Decimal(after.amount_paid) == computed


async def test_converted_amount_rounding_to_zero_is_amount_too_small(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "USD", "EUR", "0.4")
    txn = await create_txn(allocations, md, "10.00", "USD", value_date=APR_20)
    await invalid(
        allocate(allocations, md, inv.id, txn.id, "0.01"),  # 0.004 EUR -> 0.00
        "allocation.amount",
        "AMOUNT_TOO_SMALL",
    )
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_foreign_allocation_over_amount_due_reports_the_converted_amount(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "USD", "EUR", "0.92")
    txn = await create_txn(allocations, md, "2000.00", "USD", value_date=APR_20)
    # 1565.23 x 0.92 = 1440.0116 -> 1440.01 > 1440.00
    meta = await precondition(
        allocate(allocations, md, inv.id, txn.id, "1565.23"), "AMOUNT_EXCEEDS_AMOUNT_DUE"
    )
    assert (meta["invoiceAmount"], meta["amountDue"], meta["currency"]) == (
        "1440.01",
        "1440.00",
        "EUR",
    )
    # 1565.22 x 0.92 = 1440.0024 -> 1440.00: settles exactly.
    alloc = await allocate(allocations, md, inv.id, txn.id, "1565.22")
    assert alloc.invoice_amount == "1440.00" and alloc.allocation_type == FULL


async def test_no_exchange_rate_is_failed_precondition_naming_pair_and_date(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, "100.00", "USD", value_date=APR_20)
    await create_rate(allocations, md, "GBP", "EUR", "1.17")  # another pair
    await create_rate(allocations, md, "USD", "EUR", "0.92", on=date(2026, 4, 21))  # too late
    err = await fails(allocate(allocations, md, inv.id, txn.id, "10.00"), Code.FAILED_PRECONDITION)
    info = error_info(err)
    assert info.reason == "NO_EXCHANGE_RATE"
    assert (info.metadata["baseCurrency"], info.metadata["quoteCurrency"]) == ("USD", "EUR")
    assert info.metadata["date"] == "2026-04-20"
    message = err.details() or ""
    assert "USD" in message and "EUR" in message and "2026-04-20" in message
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_rate_selection_latest_on_or_before_value_date(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "USD", "EUR", "0.90", on=APR_01)
    chosen = await create_rate(allocations, md, "USD", "EUR", "0.92", on=APR_15)
    await create_rate(allocations, md, "USD", "EUR", "0.95", on=APR_25)  # after value_date
    txn = await create_txn(allocations, md, "100.00", "USD", value_date=APR_20)
    alloc = await allocate(allocations, md, inv.id, txn.id, "100.00")
    assert alloc.exchange_rate_id == chosen.id
    assert alloc.invoice_amount == "92.00"
    assert alloc.composite_fx_rate == "1 USD = 0.92 EUR (ecb, 2026-04-15)"


async def test_rate_selection_takes_the_latest_in_either_direction(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "USD", "EUR", "0.92", on=APR_01)
    inverse = await create_rate(allocations, md, "EUR", "USD", "1.25", on=APR_15)
    txn = await create_txn(allocations, md, "100.00", "USD", value_date=APR_20)
    alloc = await allocate(allocations, md, inv.id, txn.id, "100.00")
    assert alloc.exchange_rate_id == inverse.id
    assert alloc.invoice_amount == str(half_up(Decimal("100.00") / Decimal("1.25"), 2))  # 80.00
    assert alloc.composite_fx_rate == "1 EUR = 1.25 USD (ecb, 2026-04-15)"


async def test_rate_selection_same_date_prefers_direct_direction_then_source(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "EUR", "USD", "1.25", on=APR_15, source="aaa")
    await create_rate(allocations, md, "USD", "EUR", "0.92", on=APR_15, source="zzz")
    bank = await create_rate(allocations, md, "USD", "EUR", "0.91", on=APR_15, source="bank")
    txn = await create_txn(allocations, md, "100.00", "USD", value_date=APR_20)
    alloc = await allocate(allocations, md, inv.id, txn.id, "100.00")
    # Direct (USD -> EUR) before inverse; among those, source ascending: "bank" < "zzz".
    assert alloc.exchange_rate_id == bank.id
    assert alloc.invoice_amount == "91.00"


async def test_explicit_exchange_rate_id_is_used_even_when_not_the_latest(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    older = await create_rate(allocations, md, "EUR", "JPY", "150", on=APR_01)
    await create_rate(allocations, md, "EUR", "JPY", "160", on=APR_15)
    txn = await create_txn(allocations, md, "15000", "JPY", value_date=APR_20)
    alloc = await allocate(allocations, md, inv.id, txn.id, "15000", exchange_rate_id=older.id)
    assert alloc.exchange_rate_id == older.id
    assert alloc.invoice_amount == "100.00"  # 15000 / 150
    assert alloc.composite_fx_rate == "1 EUR = 150 JPY (ecb, 2026-04-01)"


async def test_exchange_rate_for_another_pair_is_pair_mismatch(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    gbp = await create_rate(allocations, md, "GBP", "EUR", "1.17")
    await create_rate(allocations, md, "USD", "EUR", "0.92")
    txn = await create_txn(allocations, md, "100.00", "USD", value_date=APR_20)
    await invalid(
        allocate(allocations, md, inv.id, txn.id, "10.00", exchange_rate_id=gbp.id),
        "allocation.exchange_rate_id",
        "EXCHANGE_RATE_PAIR_MISMATCH",
    )
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_exchange_rate_given_for_same_currencies_is_not_needed(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    usd = await create_rate(allocations, md, "USD", "EUR", "0.92")
    txn = await create_txn(allocations, md, "100.00", "EUR")
    await invalid(
        allocate(allocations, md, inv.id, txn.id, "10.00", exchange_rate_id=usd.id),
        "allocation.exchange_rate_id",
        "EXCHANGE_RATE_NOT_NEEDED",
    )


async def test_unknown_exchange_rate_id_is_not_found(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, "100.00", "USD", value_date=APR_20)
    err = await fails(
        allocate(allocations, md, inv.id, txn.id, "10.00", exchange_rate_id=UNKNOWN_FXR),
        Code.NOT_FOUND,
    )
    assert error_info(err).reason == "EXCHANGE_RATE_NOT_FOUND"


# ---- accounting currency ------------------------------------------------------------


async def test_accounting_currency_usd_converts_or_reuses_amounts(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    usd_rate = await create_rate(allocations, md, "USD", "EUR", "0.92")
    jpy_rate = await create_rate(allocations, md, "EUR", "JPY", "160")
    usd, jpy, eur = await asyncio.gather(
        create_txn(allocations, md, "100.00", "USD", value_date=APR_20),
        create_txn(allocations, md, "16000", "JPY", value_date=APR_20),
        create_txn(allocations, md, "50.00", "EUR", value_date=APR_20),
    )
    before = await allocate(allocations, md, inv.id, eur.id, "10.00")
    assert (before.accounting_amount, before.accounting_currency) == ("10.00", "EUR")

    settings = await set_accounting_currency(allocations, md, "USD")
    assert settings.accounting_currency == "USD"

    # Accounting currency == transaction currency: the amount itself.
    by_usd = await allocate(allocations, md, inv.id, usd.id, "100.00")
    assert by_usd.invoice_amount == "92.00"
    assert (by_usd.accounting_amount, by_usd.accounting_currency) == ("100.00", "USD")
    assert by_usd.accounting_exchange_rate_id == ""
    assert by_usd.composite_fx_rate == "1 USD = 0.92 EUR (ecb, 2026-04-01)"

    # Neither: invoice_amount (EUR) converted EUR -> USD with 1 USD = 0.92 EUR (inverse).
    by_jpy = await allocate(allocations, md, inv.id, jpy.id, "16000")
    invoice_amount = half_up(Decimal("16000") / Decimal("160"), 2)
    accounting = half_up(invoice_amount / Decimal("0.92"), 2)
    assert (invoice_amount, accounting) == (Decimal("100.00"), Decimal("108.70"))
    assert by_jpy.invoice_amount == str(invoice_amount)
    assert (by_jpy.accounting_amount, by_jpy.accounting_currency) == (str(accounting), "USD")
    assert by_jpy.exchange_rate_id == jpy_rate.id
    assert by_jpy.accounting_exchange_rate_id == usd_rate.id
    assert sorted(by_jpy.composite_fx_rate.split("; ")) == sorted(
        ["1 EUR = 160 JPY (ecb, 2026-04-01)", "1 USD = 0.92 EUR (ecb, 2026-04-01)"]
    )

    # Same currency as the invoice, accounting differs: converted too.
    by_eur = await allocate(allocations, md, inv.id, eur.id, "23.00")
    assert by_eur.invoice_amount == "23.00"
    assert by_eur.accounting_amount == str(half_up(Decimal("23.00") / Decimal("0.92"), 2))
    assert by_eur.accounting_exchange_rate_id == usd_rate.id
    assert by_eur.exchange_rate_id == ""

    # Existing allocations keep what they were created with.
    kept = await allocations.GetAllocation(apb.GetAllocationRequest(id=before.id), metadata=md)
    assert (kept.accounting_amount, kept.accounting_currency) == ("10.00", "EUR")


async def test_accounting_currency_without_rate_is_no_exchange_rate_naming_that_pair(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "EUR", "JPY", "160")
    await set_accounting_currency(allocations, md, "USD")
    txn = await create_txn(allocations, md, "16000", "JPY", value_date=APR_20)
    err = await fails(allocate(allocations, md, inv.id, txn.id, "16000"), Code.FAILED_PRECONDITION)
    info = error_info(err)
    assert info.reason == "NO_EXCHANGE_RATE"
    assert (info.metadata["baseCurrency"], info.metadata["quoteCurrency"]) == ("EUR", "USD")
    assert info.metadata["date"] == "2026-04-20"
    await _assert_nothing_allocated(allocations, invoices, md, admin, tenant, inv, txn)


async def test_accounting_rate_uses_latest_on_or_before_value_date(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await set_accounting_currency(allocations, md, "GBP")
    await create_rate(allocations, md, "GBP", "EUR", "1.10", on=APR_01)
    chosen = await create_rate(allocations, md, "EUR", "GBP", "0.85", on=APR_15)
    await create_rate(allocations, md, "GBP", "EUR", "1.25", on=APR_25)
    txn = await create_txn(allocations, md, "100.00", "EUR", value_date=APR_20)
    alloc = await allocate(allocations, md, inv.id, txn.id, "100.00")
    assert alloc.accounting_exchange_rate_id == chosen.id
    assert (alloc.accounting_amount, alloc.accounting_currency) == ("85.00", "GBP")
    assert alloc.composite_fx_rate == "1 EUR = 0.85 GBP (ecb, 2026-04-15)"


# ---- reversal (DeleteAllocation) ----------------------------------------------------


async def test_reversal_reopens_invoice_and_frees_transaction(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md, amount="2000.00")
    part = await allocate(allocations, md, inv.id, txn.id, "400.00")
    rest = await allocate(allocations, md, inv.id, txn.id, "1040.00")
    paid = await get_invoice(invoices, md, inv.id)
    assert paid.payment_status == PAID and paid.HasField("paid_at")
    txn_paid = await get_txn(allocations, md, txn.id)

    reversed_rest = await reverse(allocations, md, rest.id, etag=rest.etag)
    assert reversed_rest.id == rest.id
    assert reversed_rest.HasField("deleted_at")
    assert reversed_rest.deleted_by == "dev-user"
    reopened = await get_invoice(invoices, md, inv.id)
    assert (reopened.amount_paid, reopened.amount_due, reopened.payment_status) == (
        "400.00",
        "1040.00",
        PARTIALLY_PAID,
    )
    assert not reopened.HasField("paid_at")
    freed = await get_txn(allocations, md, txn.id)
    assert (freed.allocated_amount, freed.unallocated_amount) == ("400.00", "1600.00")
    assert freed.etag != txn_paid.etag

    await reverse(allocations, md, part.id)
    unpaid = await get_invoice(invoices, md, inv.id)
    assert (unpaid.amount_paid, unpaid.amount_due, unpaid.payment_status) == (
        "0.00",
        "1440.00",
        UNPAID,
    )

    fetched = await allocations.GetAllocation(apb.GetAllocationRequest(id=rest.id), metadata=md)
    assert fetched.HasField("deleted_at") and fetched.id == rest.id
    live = [a.id for a in await list_allocations(allocations, md)]
    assert live == []
    every = {a.id for a in await list_allocations(allocations, md, show_deleted=True)}
    assert every == {part.id, rest.id}

    await fails(reverse(allocations, md, rest.id), Code.NOT_FOUND)
    # Freed money can be allocated again.
    again = await allocate(allocations, md, inv.id, txn.id, "1440.00")
    assert again.allocation_type == FULL


async def test_reversal_of_foreign_allocation_drops_the_invoice_amount(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "EUR", "JPY", "160")
    txn = await create_txn(allocations, md, "12004", "JPY", value_date=APR_20)
    alloc = await allocate(allocations, md, inv.id, txn.id, "12004")
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "75.03"
    await reverse(allocations, md, alloc.id)
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "0.00"
    assert (await get_txn(allocations, md, txn.id)).unallocated_amount == "12004"


async def test_reversal_with_stale_etag_is_aborted(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    alloc = await allocate(allocations, md, inv.id, txn.id, "10.00")
    err = await fails(reverse(allocations, md, alloc.id, etag='W/"999"'), Code.ABORTED)
    assert error_info(err).reason == "ETAG_MISMATCH"
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "10.00"


async def test_reversal_of_unknown_or_malformed_id(allocations: Allocs, md: Metadata) -> None:
    await fails(reverse(allocations, md, UNKNOWN_ALC), Code.NOT_FOUND)
    await invalid(reverse(allocations, md, UNKNOWN_TXN), "id")
    await invalid(
        allocations.GetAllocation(apb.GetAllocationRequest(id="alc_x"), metadata=md), "id"
    )


async def test_void_is_refused_while_an_allocation_is_live_and_works_after_reversal(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    txn = await create_txn(allocations, md)
    alloc = await allocate(allocations, md, inv.id, txn.id, "50.00")
    err = await fails(
        invoices.VoidInvoice(ipb.VoidInvoiceRequest(id=inv.id), metadata=md),
        Code.FAILED_PRECONDITION,
    )
    assert error_info(err).reason == "INVOICE_HAS_ALLOCATIONS"
    assert (await get_invoice(invoices, md, inv.id)).status == ipb.INVOICE_STATUS_ISSUED

    await reverse(allocations, md, alloc.id)
    voided = await invoices.VoidInvoice(ipb.VoidInvoiceRequest(id=inv.id), metadata=md)
    assert voided.status == ipb.INVOICE_STATUS_VOID


# ---- ListAllocations ----------------------------------------------------------------


async def _allocation_world(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> tuple[dict[str, apb.Allocation], dict[str, str]]:
    """Four allocations over three invoices (totals 1440, 1440, 500) and two transactions
    (EUR 2000.00 on 2026-04-15, USD 100.00 on 2026-04-20)."""
    one, two = await asyncio.gather(issued_invoice(invoices, md), issued_invoice(invoices, md))
    three = await issued_invoice(
        invoices,
        md,
        line_items=[ipb.LineItem(description="Small", quantity="1", unit_price="500.00")],
    )
    assert three.total == "500.00"
    await create_rate(allocations, md, "USD", "EUR", "0.92")
    eur = await create_txn(allocations, md, "2000.00", "EUR", value_date=APR_15)
    usd = await create_txn(allocations, md, "100.00", "USD", value_date=APR_20)
    world = {
        "full": await allocate(allocations, md, one.id, eur.id, "1440.00"),
        "part": await allocate(allocations, md, two.id, eur.id, "100.00"),
        "usd": await allocate(allocations, md, two.id, usd.id, "100.00"),
        "three": await allocate(allocations, md, three.id, eur.id, "50.00"),
    }
    names = {"one": one.number, "two_id": two.id, "eur_id": eur.id}
    return world, names


async def _listed(allocations: Allocs, md: Metadata, **kwargs: Any) -> list[str]:
    got = [a.id for a in await list_allocations(allocations, md, **kwargs)]
    assert len(got) == len(set(got)), f"{kwargs}: duplicated rows {got}"
    return got


EVERY = {"full", "part", "usd", "three"}
ALLOCATION_FILTERS: list[tuple[str, set[str]]] = [
    ('invoice_id = "{two_id}"', {"part", "usd"}),
    ('transaction_id = "{eur_id}"', {"full", "part", "three"}),
    ("allocation_type = FULL", {"full"}),
    ("is_partial = true", {"part", "usd", "three"}),
    ("currency = USD", {"usd"}),
    ("accounting_currency = EUR", EVERY),
    ("invoice_amount > 95", {"full", "part"}),
    ("exchange_rate_id IS NOT NULL", {"usd"}),
    ('composite_fx_rate:"usd"', {"usd"}),
    ('invoice.number = "{one}"', {"full"}),
    ("invoice.total < 1000", {"three"}),
    ("invoice.grand_total = 500", {"three"}),
    ("invoice.amount_due = 0", {"full"}),
    ("invoice.payment_status = PARTIALLY_PAID", {"part", "usd", "three"}),
    ("invoice.status = ISSUED", EVERY),
    ('transaction.value_date >= "2026-04-20"', {"usd"}),
    ("transaction.currency = USD", {"usd"}),
    ("transaction.instructed_amount > 1000", {"full", "part", "three"}),
    ('exchange_rate.rate_date = "2026-04-01"', {"usd"}),
    ("exchange_rate.base_currency = USD", {"usd"}),
    ("workspace.accounting_currency = EUR", EVERY),
]


@pytest.mark.parametrize(
    ("template", "expected"), ALLOCATION_FILTERS, ids=[c[0] for c in ALLOCATION_FILTERS]
)
async def test_list_allocations_filter_on_own_and_related_fields(
    allocations: Allocs, invoices: Invoices, md: Metadata, template: str, expected: set[str]
) -> None:
    world, names = await _allocation_world(allocations, invoices, md)
    got = await _listed(allocations, md, filter=template.format(**names))
    assert {name for name, a in world.items() if a.id in got} == expected
    assert len(got) == len(expected)


@pytest.mark.parametrize(
    ("order_by", "key"),
    [
        ("amount", lambda a, inv, txn: (Decimal(a.amount), a.id)),
        ("invoice.total", lambda a, inv, txn: (Decimal(inv.total), a.id)),
        ("transaction.amount", lambda a, inv, txn: (Decimal(txn.amount), a.id)),
    ],
    ids=["amount", "invoice.total", "transaction.amount"],
)
@pytest.mark.parametrize("direction", ["asc", "desc"])
async def test_list_allocations_order_by_own_and_related_fields_across_pages(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    order_by: str,
    key: Any,
    direction: str,
) -> None:
    world, _ = await _allocation_world(allocations, invoices, md)
    keyed = []
    for a in world.values():
        inv = await get_invoice(invoices, md, a.invoice_id)
        txn = await get_txn(allocations, md, a.transaction_id)
        keyed.append((key(a, inv, txn), a.id))
    expected = [i for _, i in sorted(keyed, reverse=direction == "desc")]

    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = await allocations.ListAllocations(
            apb.ListAllocationsRequest(
                limit=1, order_by=order_by, direction=direction, cursor=cursor
            ),
            metadata=md,
        )
        seen += [a.id for a in page.data]
        cursor = page.next_cursor
        if not cursor:
            break
    assert seen == expected


async def test_list_allocations_bad_filter_and_order_by(allocations: Allocs, md: Metadata) -> None:
    err = await invalid(
        allocations.ListAllocations(
            apb.ListAllocationsRequest(filter="allocation_type > FULL"), metadata=md
        ),
        "filter",
        "UNSUPPORTED_FILTER_OPERATOR",
    )
    assert (error_info(err).metadata["filterField"], error_info(err).metadata["operator"]) == (
        "allocation_type",
        ">",
    )
    err = await invalid(
        allocations.ListAllocations(
            apb.ListAllocationsRequest(filter='invoice.number > "A"'), metadata=md
        ),
        "filter",
        "UNSUPPORTED_FILTER_OPERATOR",
    )
    assert error_info(err).metadata["filterField"] == "invoice.number"
    err = await invalid(
        allocations.ListAllocations(apb.ListAllocationsRequest(filter="nope = 1"), metadata=md),
        "filter",
        "UNKNOWN_FILTER_FIELD",
    )
    assert error_info(err).metadata["filterField"] == "nope"
    await invalid(
        allocations.ListAllocations(
            apb.ListAllocationsRequest(filter="invoice.notes = x"), metadata=md
        ),
        "filter",
        "UNKNOWN_FILTER_FIELD",
    )
    await invalid(
        allocations.ListAllocations(
            apb.ListAllocationsRequest(order_by="invoice.notes"), metadata=md
        ),
        "order_by",
    )


# ---- PayInvoice ---------------------------------------------------------------------


async def _allocations_of(
    allocations: Allocs, md: Metadata, invoice_id: str
) -> list[apb.Allocation]:
    return await list_allocations(allocations, md, filter=f'invoice_id = "{invoice_id}"')


async def test_pay_invoice_default_amount_settles_it(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    before = datetime.now(UTC)
    paid = await pay(invoices, md, inv.id, reference="wire 7")
    assert paid.id == inv.id
    assert (paid.amount_paid, paid.amount_due, paid.payment_status) == ("1440.00", "0.00", PAID)
    assert paid.HasField("paid_at")
    assert_recent(paid.paid_at, before)
    assert as_date(paid.paid_date) == as_dt(paid.paid_at).date()
    assert await get_invoice(invoices, md, inv.id) == paid

    (alloc,) = await _allocations_of(allocations, md, inv.id)
    assert (alloc.amount, alloc.currency, alloc.allocation_type) == ("1440.00", "EUR", FULL)
    txn = await get_txn(allocations, md, alloc.transaction_id)
    assert txn.direction == RECEIVABLE
    assert txn.counterparty_id == PARTY_A
    assert (txn.amount, txn.currency, txn.reference) == ("1440.00", "EUR", "wire 7")
    assert as_date(txn.value_date) == as_dt(paid.paid_at).date()


async def test_pay_supplier_invoice_records_a_payable_transaction(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(
        invoices, md, type=ipb.INVOICE_TYPE_SUPPLIER, number="SUP-9", counterparty_id=PARTY_B
    )
    paid = await pay(invoices, md, inv.id)
    assert paid.payment_status == PAID
    (alloc,) = await _allocations_of(allocations, md, inv.id)
    txn = await get_txn(allocations, md, alloc.transaction_id)
    assert (txn.direction, txn.counterparty_id) == (PAYABLE, PARTY_B)


async def test_pay_invoice_partial_amount_with_explicit_paid_at(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    when = datetime(2026, 3, 1, 10, 30, tzinfo=UTC)
    partial = await pay(invoices, md, inv.id, amount="440.00", paid_at=ts(when))
    assert (partial.amount_paid, partial.amount_due, partial.payment_status) == (
        "440.00",
        "1000.00",
        PARTIALLY_PAID,
    )
    assert not partial.HasField("paid_at")
    (alloc,) = await _allocations_of(allocations, md, inv.id)
    assert alloc.allocation_type == PARTIAL
    txn = await get_txn(allocations, md, alloc.transaction_id)
    assert as_date(txn.value_date) == date(2026, 3, 1)

    settled_at = datetime(2026, 3, 5, 8, 0, tzinfo=UTC)
    paid = await pay(invoices, md, inv.id, paid_at=ts(settled_at))  # default: the rest
    assert (paid.amount_paid, paid.amount_due, paid.payment_status) == ("1440.00", "0.00", PAID)
    assert as_dt(paid.paid_at) == settled_at
    assert as_date(paid.paid_date) == date(2026, 3, 5)
    amounts = sorted(a.amount for a in await _allocations_of(allocations, md, inv.id))
    assert amounts == ["1000.00", "440.00"]


async def test_pay_invoice_in_foreign_currency_defaults_to_largest_amount_not_exceeding_due(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    fxr = await create_rate(allocations, md, "USD", "EUR", "0.92", on=date(2026, 1, 1))
    rate, due = Decimal("0.92"), Decimal("1440.00")
    cent = Decimal("0.01")
    # Largest USD amount x (in cents) with round_half_up(x * 0.92) <= due.
    x = (due / rate).quantize(cent, rounding=ROUND_DOWN)
    while half_up((x + cent) * rate, 2) <= due:
        x += cent
    while half_up(x * rate, 2) > due:
        x -= cent
    assert x == Decimal("1565.22")  # 1440.0024 -> 1440.00; 1565.23 -> 1440.01

    paid = await pay(invoices, md, inv.id, currency="USD")
    assert paid.amount_paid == str(half_up(x * rate, 2))
    assert paid.payment_status == PAID
    (alloc,) = await _allocations_of(allocations, md, inv.id)
    assert (alloc.amount, alloc.currency) == (str(x), "USD")
    assert alloc.exchange_rate_id == fxr.id
    assert alloc.invoice_amount == "1440.00"


async def test_pay_invoice_foreign_partial_amount(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "EUR", "JPY", "160", on=date(2026, 1, 1))
    paid = await pay(invoices, md, inv.id, amount="12004", currency="jpy")
    assert (paid.amount_paid, paid.payment_status) == ("75.03", PARTIALLY_PAID)


async def test_pay_invoice_foreign_without_rate_is_no_exchange_rate(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    err = await fails(pay(invoices, md, inv.id, currency="USD"), Code.FAILED_PRECONDITION)
    assert error_info(err).reason == "NO_EXCHANGE_RATE"
    assert await count(admin, "transactions", tenant) == 0
    assert await count(admin, "allocations", tenant) == 0


async def test_pay_invoice_already_paid_is_failed_precondition(
    invoices: Invoices, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    inv = await issued_invoice(invoices, md)
    await pay(invoices, md, inv.id)
    await precondition(pay(invoices, md, inv.id), "INVOICE_ALREADY_PAID")
    assert await count(admin, "transactions", tenant) == 1
    assert await count(admin, "allocations", tenant) == 1


async def test_pay_invoice_over_amount_due_writes_nothing(
    invoices: Invoices, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    inv = await issued_invoice(invoices, md)
    meta = await precondition(
        pay(invoices, md, inv.id, amount="1440.01"), "AMOUNT_EXCEEDS_AMOUNT_DUE"
    )
    assert (meta["invoiceAmount"], meta["amountDue"], meta["currency"]) == (
        "1440.01",
        "1440.00",
        "EUR",
    )
    assert await count(admin, "transactions", tenant) == 0
    assert await count(admin, "allocations", tenant) == 0
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "0.00"


async def test_pay_draft_invoice_is_not_payable(
    invoices: Invoices, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    inv = await draft_invoice(invoices, md)
    meta = await precondition(pay(invoices, md, inv.id), "INVOICE_NOT_PAYABLE")
    assert meta["status"].lower() == "draft"
    assert await count(admin, "transactions", tenant) == 0


async def test_pay_void_invoice_is_not_payable(invoices: Invoices, md: Metadata) -> None:
    inv = await issued_invoice(invoices, md)
    await invoices.VoidInvoice(ipb.VoidInvoiceRequest(id=inv.id), metadata=md)
    meta = await precondition(pay(invoices, md, inv.id), "INVOICE_NOT_PAYABLE")
    assert meta["status"].lower() == "void"


async def test_pay_unknown_invoice_is_not_found(invoices: Invoices, md: Metadata) -> None:
    err = await fails(pay(invoices, md, UNKNOWN_INV), Code.NOT_FOUND)
    assert error_info(err).reason == "INVOICE_NOT_FOUND"
    await invalid(pay(invoices, md, UNKNOWN_TXN), "id")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "abc"}, "amount"),
        ({"currency": "EUX"}, "currency"),
    ],
    ids=["zero", "negative", "too_precise", "not_a_number", "unknown_currency"],
)
async def test_pay_invoice_with_bad_input_is_invalid_argument(
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    kwargs: dict[str, str],
    field: str,
) -> None:
    inv = await issued_invoice(invoices, md)
    await invalid(pay(invoices, md, inv.id, **kwargs), field)
    assert await count(admin, "transactions", tenant) == 0


async def test_pay_invoice_amount_converting_to_zero_is_amount_too_small(
    allocations: Allocs, invoices: Invoices, md: Metadata
) -> None:
    inv = await issued_invoice(invoices, md)
    await create_rate(allocations, md, "USD", "EUR", "0.4", on=date(2026, 1, 1))
    await invalid(
        pay(invoices, md, inv.id, amount="0.01", currency="USD"), "amount", "AMOUNT_TOO_SMALL"
    )


async def test_pay_invoice_retried_with_same_request_id_pays_once(
    allocations: Allocs,
    invoices: Invoices,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
) -> None:
    inv = await issued_invoice(invoices, md)
    key = str(uuid.uuid4())
    first = await pay(invoices, md, inv.id, amount="100.00", request_id=key)
    second = await pay(invoices, md, inv.id, amount="100.00", request_id=key)
    assert first.amount_paid == second.amount_paid == "100.00"
    assert len(await _allocations_of(allocations, md, inv.id)) == 1
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "100.00"
    assert await count(admin, "transactions", tenant) == 1


async def test_pay_invoice_needs_invoices_write(
    invoices: Invoices, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    inv = await issued_invoice(invoices, md)
    only_allocations = tokens.md(tenant, permissions=["allocations.read", "allocations.write"])
    err = await fails(pay(invoices, only_allocations, inv.id), Code.PERMISSION_DENIED)
    assert error_info(err).metadata["permission"] == "invoices.write"
    assert (await get_invoice(invoices, md, inv.id)).amount_paid == "0.00"


# ---- workspace settings -------------------------------------------------------------


async def test_workspace_settings_defaults(
    allocations: Allocs, md: Metadata, tenant: uuid.UUID
) -> None:
    settings = await allocations.GetWorkspaceSettings(
        apb.GetWorkspaceSettingsRequest(), metadata=md
    )
    assert settings.workspace_id == str(tenant)
    assert settings.accounting_currency == "EUR"
    assert settings.name == ""
    assert settings.etag == 'W/"0"'
    assert not settings.HasField("updated_at")


async def test_workspace_settings_update_with_mask_and_etag(
    allocations: Allocs, md: Metadata, tenant: uuid.UUID
) -> None:
    updated = await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(accounting_currency="usd", name="Ignored", etag='W/"0"'),
            update_mask=mask("accounting_currency"),
        ),
        metadata=md,
    )
    assert updated.workspace_id == str(tenant)
    assert (updated.accounting_currency, updated.name) == ("USD", "")
    assert updated.HasField("updated_at") and updated.updated_by == "dev-user"
    assert ETAG.match(updated.etag) and updated.etag != 'W/"0"'

    renamed = await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(name="Acme GmbH", etag=updated.etag)
        ),  # no mask: the populated fields
        metadata=md,
    )
    assert (renamed.accounting_currency, renamed.name) == ("USD", "Acme GmbH")
    assert renamed.etag != updated.etag

    both = await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(
            settings=apb.WorkspaceSettings(accounting_currency="GBP", name="Acme Ltd"),
            update_mask=mask("*"),
        ),
        metadata=md,
    )
    assert (both.accounting_currency, both.name) == ("GBP", "Acme Ltd")
    fetched = await allocations.GetWorkspaceSettings(apb.GetWorkspaceSettingsRequest(), metadata=md)
    assert fetched == both

    err = await fails(
        allocations.UpdateWorkspaceSettings(
            apb.UpdateWorkspaceSettingsRequest(
                settings=apb.WorkspaceSettings(name="late", etag=updated.etag),
                update_mask=mask("name"),
            ),
            metadata=md,
        ),
        Code.ABORTED,
    )
    assert error_info(err).reason == "ETAG_MISMATCH"
    assert (
        await allocations.GetWorkspaceSettings(apb.GetWorkspaceSettingsRequest(), metadata=md)
    ).name == "Acme Ltd"


@pytest.mark.parametrize("path", ["colour", "workspace_id", "updated_at", "etag", "settings.name"])
async def test_workspace_settings_bad_mask_path_is_invalid_argument(
    allocations: Allocs, md: Metadata, admin: asyncpg.Connection, tenant: uuid.UUID, path: str
) -> None:
    await invalid(
        allocations.UpdateWorkspaceSettings(
            apb.UpdateWorkspaceSettingsRequest(
                settings=apb.WorkspaceSettings(accounting_currency="USD"), update_mask=mask(path)
            ),
            metadata=md,
        ),
        "update_mask",
    )
    assert await count(admin, "workspace_settings", tenant) == 0


@pytest.mark.parametrize(
    ("bad_settings", "field"),
    [
        (apb.WorkspaceSettings(accounting_currency="EUX"), "settings.accounting_currency"),
        (apb.WorkspaceSettings(name="n" * 201), "settings.name"),
    ],
    ids=["unknown_currency", "name_too_long"],
)
async def test_workspace_settings_bad_value_is_invalid_argument(
    allocations: Allocs,
    md: Metadata,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    bad_settings: apb.WorkspaceSettings,
    field: str,
) -> None:
    await invalid(
        allocations.UpdateWorkspaceSettings(
            apb.UpdateWorkspaceSettingsRequest(settings=bad_settings), metadata=md
        ),
        field,
    )
    assert await count(admin, "workspace_settings", tenant) == 0


async def test_explicit_workspace_id_reads_that_workspace_when_in_the_token(
    allocations: Allocs, invoices: Invoices, tokens: Tokens, tenant: uuid.UUID
) -> None:
    other = uuid.uuid4()
    other_md = tokens.md(other)
    inv = await issued_invoice(invoices, other_md)
    txn = await create_txn(allocations, other_md)
    theirs = await allocate(allocations, other_md, inv.id, txn.id, "10.00")
    await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(settings=apb.WorkspaceSettings(name="Tenant B")),
        metadata=other_md,
    )

    allowed = tokens.md(tenant, workspaces=[str(other)])
    listed = await list_allocations(allocations, allowed, workspace_id=str(other))
    assert [a.id for a in listed] == [theirs.id]
    assert listed[0].workspace_id == str(other)
    assert await list_allocations(allocations, allowed) == []  # default: own tenant
    assert await list_allocations(allocations, allowed, workspace_id=str(tenant)) == []
    settings = await allocations.GetWorkspaceSettings(
        apb.GetWorkspaceSettingsRequest(workspace_id=str(other)), metadata=allowed
    )
    assert (settings.workspace_id, settings.name) == (str(other), "Tenant B")
    named = await list_allocations(
        allocations, allowed, workspace_id=str(other), filter='workspace.name = "Tenant B"'
    )
    assert [a.id for a in named] == [theirs.id]


async def test_explicit_workspace_id_not_in_the_token_is_permission_denied(
    allocations: Allocs, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    other = str(uuid.uuid4())
    calls = [
        allocations.ListAllocations(apb.ListAllocationsRequest(workspace_id=other), metadata=md),
        allocations.GetWorkspaceSettings(
            apb.GetWorkspaceSettingsRequest(workspace_id=other), metadata=md
        ),
        allocations.UpdateWorkspaceSettings(
            apb.UpdateWorkspaceSettingsRequest(
                settings=apb.WorkspaceSettings(name="x"), workspace_id=other
            ),
            metadata=tokens.md(tenant, workspaces=[str(uuid.uuid4())]),
        ),
    ]
    for call in calls:
        err = await fails(call, Code.PERMISSION_DENIED)
        assert error_info(err).reason == "WORKSPACE_NOT_ALLOWED"


@pytest.mark.parametrize("bad", ["not-a-uuid", "1234", f"inv_{VALID_BODY}"])
async def test_malformed_workspace_id_is_invalid_argument(
    allocations: Allocs, md: Metadata, bad: str
) -> None:
    await invalid(
        allocations.ListAllocations(apb.ListAllocationsRequest(workspace_id=bad), metadata=md),
        "workspace_id",
    )
    await invalid(
        allocations.GetWorkspaceSettings(
            apb.GetWorkspaceSettingsRequest(workspace_id=bad), metadata=md
        ),
        "workspace_id",
    )


# ---- tenant and app isolation -------------------------------------------------------


async def test_another_tenants_ids_are_not_found_like_unknown_ids(
    allocations: Allocs, invoices: Invoices, md: Metadata, tokens: Tokens
) -> None:
    other_md = tokens.md(uuid.uuid4())
    inv = await issued_invoice(invoices, other_md)
    txn = await create_txn(allocations, other_md, amount="500.00")
    alloc = await allocate(allocations, other_md, inv.id, txn.id, "10.00")
    fxr = await create_rate(allocations, other_md, "USD", "EUR", "0.92")

    other_err = await fails(get_txn(allocations, md, txn.id), Code.NOT_FOUND)
    unknown_err = await fails(get_txn(allocations, md, UNKNOWN_TXN), Code.NOT_FOUND)
    assert rich_status(other_err).SerializeToString() == rich_status(
        unknown_err
    ).SerializeToString().replace(UNKNOWN_TXN.encode(), txn.id.encode())

    other_err = await fails(
        allocations.GetAllocation(apb.GetAllocationRequest(id=alloc.id), metadata=md),
        Code.NOT_FOUND,
    )
    unknown_err = await fails(
        allocations.GetAllocation(apb.GetAllocationRequest(id=UNKNOWN_ALC), metadata=md),
        Code.NOT_FOUND,
    )
    assert rich_status(other_err).SerializeToString() == rich_status(
        unknown_err
    ).SerializeToString().replace(UNKNOWN_ALC.encode(), alloc.id.encode())

    await fails(
        allocations.GetExchangeRate(apb.GetExchangeRateRequest(id=fxr.id), metadata=md),
        Code.NOT_FOUND,
    )
    await fails(
        allocations.DeleteTransaction(apb.DeleteTransactionRequest(id=txn.id), metadata=md),
        Code.NOT_FOUND,
    )
    await fails(reverse(allocations, md, alloc.id), Code.NOT_FOUND)

    mine_inv = await issued_invoice(invoices, md)
    mine_txn = await create_txn(allocations, md)
    await fails(allocate(allocations, md, mine_inv.id, txn.id, "1.00"), Code.NOT_FOUND)
    err = await fails(allocate(allocations, md, inv.id, mine_txn.id, "1.00"), Code.NOT_FOUND)
    assert error_info(err).reason == "INVOICE_NOT_FOUND"

    # Untouched, and invisible in my lists.
    assert (await get_txn(allocations, other_md, txn.id)).allocated_amount == "10.00"
    assert (await get_invoice(invoices, other_md, inv.id)).amount_paid == "10.00"
    assert await list_txn_ids(allocations, md) == [mine_txn.id]
    assert await list_allocations(allocations, md) == []


async def test_app_tokens_see_and_write_only_their_apps_transactions(
    allocations: Allocs, invoices: Invoices, md: Metadata, tokens: Tokens, tenant: uuid.UUID
) -> None:
    app_a, app_b = tokens.md(tenant, app_id="app-a"), tokens.md(tenant, app_id="app-b")
    by_a = await create_txn(allocations, app_a)
    by_b = await create_txn(allocations, app_b)
    assert (by_a.app_id, by_b.app_id) == ("app-a", "app-b")

    assert await list_txn_ids(allocations, app_a) == [by_a.id]
    assert await list_txn_ids(allocations, app_b) == [by_b.id]
    assert set(await list_txn_ids(allocations, md)) == {by_a.id, by_b.id}
    await fails(get_txn(allocations, app_a, by_b.id), Code.NOT_FOUND)
    await fails(
        allocations.DeleteTransaction(apb.DeleteTransactionRequest(id=by_b.id), metadata=app_a),
        Code.NOT_FOUND,
    )

    inv_a = await issued_invoice(invoices, app_a)
    await fails(allocate(allocations, app_a, inv_a.id, by_b.id, "1.00"), Code.NOT_FOUND)
    alloc = await allocate(allocations, app_a, inv_a.id, by_a.id, "1.00")
    assert alloc.app_id == "app-a"
    assert [a.id for a in await list_allocations(allocations, app_a)] == [alloc.id]
    assert await list_allocations(allocations, app_b) == []
    await fails(
        allocations.GetAllocation(apb.GetAllocationRequest(id=alloc.id), metadata=app_b),
        Code.NOT_FOUND,
    )
    await fails(reverse(allocations, app_b, alloc.id), Code.NOT_FOUND)
    assert [a.id for a in await list_allocations(allocations, md)] == [alloc.id]


# ---- authentication and permissions -------------------------------------------------


async def test_create_transaction_without_allocations_write_is_permission_denied(
    allocations: Allocs, tokens: Tokens, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    reader = tokens.md(tenant, permissions=["allocations.read", "invoices.write"])
    err = await fails(create_txn(allocations, reader), Code.PERMISSION_DENIED)
    assert error_info(err).metadata["permission"] == "allocations.write"
    assert await count(admin, "transactions", tenant) == 0


async def test_list_allocations_without_allocations_read_is_permission_denied(
    allocations: Allocs, tokens: Tokens, tenant: uuid.UUID
) -> None:
    writer = tokens.md(tenant, permissions=["allocations.write", "invoices.read"])
    err = await fails(
        allocations.ListAllocations(apb.ListAllocationsRequest(), metadata=writer),
        Code.PERMISSION_DENIED,
    )
    assert error_info(err).metadata["permission"] == "allocations.read"


@pytest.mark.parametrize(
    ("rpc", "request_message", "permission"),
    [
        (
            "CreateAllocation",
            allocation_request(UNKNOWN_INV, UNKNOWN_TXN, "1.00"),
            "allocations.write",
        ),
        ("DeleteAllocation", apb.DeleteAllocationRequest(id=UNKNOWN_ALC), "allocations.write"),
        ("CreateExchangeRate", apb.CreateExchangeRateRequest(), "allocations.write"),
        (
            "UpdateWorkspaceSettings",
            apb.UpdateWorkspaceSettingsRequest(settings=apb.WorkspaceSettings(name="x")),
            "allocations.write",
        ),
        ("GetTransaction", apb.GetTransactionRequest(id=UNKNOWN_TXN), "allocations.read"),
        ("ListExchangeRates", apb.ListExchangeRatesRequest(), "allocations.read"),
        ("GetWorkspaceSettings", apb.GetWorkspaceSettingsRequest(), "allocations.read"),
    ],
)
async def test_rpc_without_its_permission_is_permission_denied(
    allocations: Allocs,
    tokens: Tokens,
    tenant: uuid.UUID,
    rpc: str,
    request_message: Any,
    permission: str,
) -> None:
    others = [p for p in ("allocations.read", "allocations.write") if p != permission]
    caller = tokens.md(tenant, permissions=[*others, "invoices.read", "invoices.write"])
    err = await fails(
        getattr(allocations, rpc)(request_message, metadata=caller), Code.PERMISSION_DENIED
    )
    assert error_info(err).metadata["permission"] == permission


async def test_rpc_without_token_is_unauthenticated(allocations: Allocs) -> None:
    await fails(allocations.ListTransactions(apb.ListTransactionsRequest()), Code.UNAUTHENTICATED)
    await fails(
        allocations.CreateTransaction(
            apb.CreateTransactionRequest(
                transaction=apb.Transaction(amount="1.00", currency="EUR", direction=RECEIVABLE)
            )
        ),
        Code.UNAUTHENTICATED,
    )


async def test_workspace_fields_of_an_unconfigured_workspace_filter_as_the_api_shows_them(
    invoices: Invoices, allocations: Allocs, md: Metadata
) -> None:
    """No settings row yet: GetWorkspaceSettings shows name "" and EUR, and the
    `workspace.*` filters match those values (not NULL)."""
    settings = await allocations.GetWorkspaceSettings(
        apb.GetWorkspaceSettingsRequest(), metadata=md
    )
    assert (settings.name, settings.accounting_currency) == ("", "EUR")
    invoice = await issued_invoice(invoices, md)
    paid = await pay(invoices, md, invoice.id, amount="10.00")
    assert paid.amount_paid == "10.00"
    [allocation] = await list_allocations(allocations, md)
    for matching in ('workspace.name = ""', "workspace.accounting_currency = EUR"):
        assert [a.id for a in await list_allocations(allocations, md, filter=matching)] == [
            allocation.id
        ]
    for other in ("workspace.name IS NULL", 'workspace.name : "acme"'):
        assert await list_allocations(allocations, md, filter=other) == []
    await allocations.UpdateWorkspaceSettings(
        apb.UpdateWorkspaceSettingsRequest(settings=apb.WorkspaceSettings(name="Acme SAS")),
        metadata=md,
    )
    found = await list_allocations(allocations, md, filter='workspace.name : "acme"')
    assert [a.id for a in found] == [allocation.id]
