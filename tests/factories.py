"""Shared test helpers: error assertions, protobuf value helpers, and factories that create
rows through the real API (so a test's data is always valid as the service defines it)."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, date, datetime
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.type import date_pb2
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb

from tests.conftest import error_info, sample_invoice, violations

Allocs = allocations_pb2_grpc.AllocationServiceStub
Invoices = invoices_pb2_grpc.InvoiceServiceStub
Metadata = tuple[tuple[str, str], ...]
Code = grpc.StatusCode
DOMAIN = "invoicing.v1"
RECEIVABLE = apb.TRANSACTION_DIRECTION_RECEIVABLE
APR_01 = date(2026, 4, 1)


# ---- values ------------------------------------------------------------------------


def pdate(value: date) -> date_pb2.Date:
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def as_date(value: date_pb2.Date) -> date:
    return date(value.year, value.month, value.day)


def today_utc() -> date:
    return datetime.now(UTC).date()


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def ts(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def as_dt(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)


# ---- errors ------------------------------------------------------------------------


async def fails(call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """Await `call`, expecting `code` with exactly one ErrorInfo of our domain."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    err = caught.value
    assert err.code() == code, f"{err.code()}: {err.details()}"
    assert error_info(err).domain == DOMAIN
    return err


async def invalid(
    call: Awaitable[Any], field: str, reason: str | None = None
) -> grpc.aio.AioRpcError:
    """INVALID_ARGUMENT whose BadRequest names `field` (and whose reason is `reason`)."""
    err = await fails(call, Code.INVALID_ARGUMENT)
    assert field in violations(err), f"{violations(err)} does not name {field}"
    if reason is not None:
        assert error_info(err).reason == reason, f"{error_info(err).reason}: {err.details()}"
    return err


async def precondition(call: Awaitable[Any], reason: str) -> dict[str, str]:
    """FAILED_PRECONDITION with `reason`; returns the ErrorInfo metadata."""
    err = await fails(call, Code.FAILED_PRECONDITION)
    info = error_info(err)
    assert info.reason == reason, f"{info.reason}: {err.details()}"
    return dict(info.metadata)


# ---- rows through the API ----------------------------------------------------------


async def draft_invoice(invoices: Invoices, md: Metadata, **overrides: Any) -> ipb.Invoice:
    result: ipb.Invoice = await invoices.CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=sample_invoice(**overrides)), metadata=md
    )
    return result


async def issued_invoice(invoices: Invoices, md: Metadata, **overrides: Any) -> ipb.Invoice:
    created = await draft_invoice(invoices, md, **overrides)
    result: ipb.Invoice = await invoices.IssueInvoice(
        ipb.IssueInvoiceRequest(id=created.id), metadata=md
    )
    return result


async def get_invoice(invoices: Invoices, md: Metadata, invoice_id: str) -> ipb.Invoice:
    result: ipb.Invoice = await invoices.GetInvoice(
        ipb.GetInvoiceRequest(id=invoice_id), metadata=md
    )
    return result


async def create_txn(
    allocations: Allocs,
    md: Metadata,
    amount: str = "100.00",
    currency: str = "EUR",
    direction: int = RECEIVABLE,
    value_date: date | None = None,
    request_id: str = "",
    **fields: Any,
) -> apb.Transaction:
    txn = apb.Transaction(amount=amount, currency=currency, direction=direction, **fields)
    if value_date is not None:
        txn.value_date.CopyFrom(pdate(value_date))
    result: apb.Transaction = await allocations.CreateTransaction(
        apb.CreateTransactionRequest(transaction=txn, request_id=request_id), metadata=md
    )
    return result


async def create_rate(
    allocations: Allocs,
    md: Metadata,
    base: str,
    quote: str,
    rate: str,
    on: date = APR_01,
    source: str = "ecb",
) -> apb.ExchangeRate:
    result: apb.ExchangeRate = await allocations.CreateExchangeRate(
        apb.CreateExchangeRateRequest(
            exchange_rate=apb.ExchangeRate(
                base_currency=base,
                quote_currency=quote,
                rate=rate,
                rate_date=pdate(on),
                source=source,
            )
        ),
        metadata=md,
    )
    return result
