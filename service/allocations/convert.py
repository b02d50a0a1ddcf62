"""Translate between protobuf messages and the allocation domain (the edge only).

Decoding validates formats and names the field on failure; business rules live in
`rules.py` and `service.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal
from typing import Any

from invoicing.v1 import allocations_pb2, invoices_pb2

from service.allocations import rules
from service.allocations import service as use_cases
from service.edge import pbconv
from service.kit import errors, ids
from service.kit.money import format_decimal, format_money, parse_currency, parse_decimal

pb = allocations_pb2
RATE_PLACES = 10
MAX_RATE = Decimal("1000000000000")
DIRECTIONS = {
    pb.TRANSACTION_DIRECTION_RECEIVABLE: rules.RECEIVABLE,
    pb.TRANSACTION_DIRECTION_PAYABLE: rules.PAYABLE,
}
DIRECTION_PB = {v: k for k, v in DIRECTIONS.items()}
ALLOCATION_TYPE_PB = {
    rules.FULL: pb.ALLOCATION_TYPE_FULL,
    rules.PARTIAL: pb.ALLOCATION_TYPE_PARTIAL,
}
SETTINGS_PATHS = ("accounting_currency", "name")
SETTINGS_READ_ONLY = ("workspace_id", "updated_at", "updated_by", "etag")


def _currency(value: str, field_path: str, *, required: bool = True) -> str | None:
    if value == "":
        if required:
            raise errors.invalid(field_path, "is required", reason="REQUIRED")
        return None
    return parse_currency(value, field_path)


# ---- decoding ----------------------------------------------------------------------


def transaction_draft(message: pb.Transaction) -> rules.TransactionDraft:
    path = "transaction"
    if message.direction not in DIRECTIONS:
        reason = "REQUIRED" if message.direction == 0 else "INVALID_ENUM"
        raise errors.invalid(f"{path}.direction", "must be RECEIVABLE or PAYABLE", reason=reason)
    currency = _currency(message.currency, f"{path}.currency")
    assert currency is not None
    return rules.TransactionDraft(
        direction=DIRECTIONS[message.direction],
        amount=rules.parse_positive(message.amount, currency, f"{path}.amount"),
        currency=currency,
        value_date=pbconv.date_from_pb(message.value_date, f"{path}.value_date"),
        reference=pbconv.text(message.reference, f"{path}.reference", max_length=255),
        counterparty_id=ids.parse_uuid(message.counterparty_id, f"{path}.counterparty_id"),
        subscription_id=ids.parse_uuid(message.subscription_id, f"{path}.subscription_id"),
    )


def rate_draft(message: pb.ExchangeRate) -> rules.RateDraft:
    path = "exchange_rate"
    base = _currency(message.base_currency, f"{path}.base_currency")
    quote = _currency(message.quote_currency, f"{path}.quote_currency")
    assert base is not None and quote is not None
    if base == quote:
        raise errors.invalid(
            f"{path}.quote_currency", "must differ from base_currency", reason="SAME_CURRENCY"
        )
    rate = parse_decimal(
        message.rate,
        f"{path}.rate",
        max_places=RATE_PLACES,
        minimum=Decimal(0),
        maximum=MAX_RATE,
        exclusive_minimum=True,
    )
    rate_date = pbconv.date_from_pb(message.rate_date, f"{path}.rate_date")
    if rate_date is None:
        raise errors.invalid(f"{path}.rate_date", "is required", reason="REQUIRED")
    source = pbconv.text(message.source.strip(), f"{path}.source", max_length=64) or "manual"
    return rules.RateDraft(base, quote, rate, rate_date, source)


def allocation_request(message: pb.Allocation) -> use_cases.AllocationRequest:
    path = "allocation"
    if message.amount == "":
        raise errors.invalid(f"{path}.amount", "is required", reason="REQUIRED")
    return use_cases.AllocationRequest(
        invoice_id=pbconv.required_id(message.invoice_id, "invoice", f"{path}.invoice_id"),
        transaction_id=pbconv.required_id(
            message.transaction_id, "transaction", f"{path}.transaction_id"
        ),
        amount=message.amount,
        currency=_currency(message.currency, f"{path}.currency", required=False),
        exchange_rate_id=pbconv.optional_id(
            message.exchange_rate_id, "exchange_rate", f"{path}.exchange_rate_id"
        ),
        subscription_id=ids.parse_uuid(message.subscription_id, f"{path}.subscription_id"),
    )


def payment(request: invoices_pb2.PayInvoiceRequest) -> use_cases.Payment:
    paid_at = None
    if request.HasField("paid_at"):
        try:
            paid_at = request.paid_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            raise errors.invalid("paid_at", "is out of range", reason="OUT_OF_RANGE") from None
    return use_cases.Payment(
        invoice_id=pbconv.required_id(request.id, "invoice", "id"),
        amount=request.amount,
        currency=_currency(request.currency, "currency", required=False),
        paid_at=paid_at,
        reference=pbconv.text(request.reference, "reference", max_length=255),
    )


def settings_changes(
    settings: pb.WorkspaceSettings, paths: Iterable[str], has_mask: bool
) -> dict[str, Any]:
    chosen = _settings_paths(settings, list(paths), has_mask)
    changes: dict[str, Any] = {}
    if "accounting_currency" in chosen:
        currency = _currency(settings.accounting_currency, "settings.accounting_currency")
        changes["accounting_currency"] = currency
    if "name" in chosen:
        changes["name"] = pbconv.text(settings.name.strip(), "settings.name", max_length=200)
    return changes


def _settings_paths(settings: pb.WorkspaceSettings, paths: list[str], has_mask: bool) -> set[str]:
    if not has_mask or not paths:
        return {p for p in SETTINGS_PATHS if getattr(settings, p) != ""}
    if paths == ["*"]:
        return set(SETTINGS_PATHS)
    for path in paths:
        if path not in SETTINGS_PATHS:
            kind = "read-only" if path in SETTINGS_READ_ONLY else "unknown"
            raise errors.invalid(
                "update_mask",
                f"{kind} path {path[:64]!r}; updatable: {', '.join(SETTINGS_PATHS)}",
                reason="INVALID_UPDATE_MASK",
                path=path[:64],
            )
    return set(paths)


# ---- encoding ----------------------------------------------------------------------


def transaction_to_pb(t: rules.Transaction) -> pb.Transaction:
    cur = t.currency
    return pb.Transaction(
        id=pbconv.public_id("transaction", t.id),
        tenant_id=str(t.tenant_id),
        app_id=t.app_id or "",
        amount=format_money(t.amount, cur),
        currency=cur,
        value_date=pbconv.pb_date(t.value_date),
        reference=t.reference,
        counterparty_id=str(t.counterparty_id or ""),
        direction=DIRECTION_PB[t.direction],
        subscription_id=str(t.subscription_id or ""),
        allocated_amount=format_money(t.allocated_amount, cur),
        unallocated_amount=format_money(t.unallocated_amount, cur),
        created_at=pbconv.ts(t.created_at),
        updated_at=pbconv.ts(t.updated_at),
        created_by=t.created_by,
        updated_by=t.updated_by,
        deleted_at=pbconv.ts(t.deleted_at),
        deleted_by=t.deleted_by or "",
        etag=t.etag,
    )


def rate_to_pb(r: rules.Rate, tenant_id: uuid.UUID) -> pb.ExchangeRate:
    return pb.ExchangeRate(
        id=pbconv.public_id("exchange_rate", r.id),
        tenant_id=str(tenant_id),
        base_currency=r.base_currency,
        quote_currency=r.quote_currency,
        rate=format_decimal(r.rate),
        rate_date=pbconv.pb_date(r.rate_date),
        source=r.source,
        created_at=pbconv.ts(r.created_at),
        created_by=r.created_by,
    )


def allocation_to_pb(a: rules.Allocation) -> pb.Allocation:
    public = pbconv.public_id("allocation", a.id)
    return pb.Allocation(
        id=public,
        invoice_transaction_id=public,
        tenant_id=str(a.tenant_id),
        app_id=a.app_id or "",
        amount=format_money(a.amount, a.currency),
        currency=a.currency,
        invoice_amount=format_money(a.invoice_amount, a.invoice_currency),
        invoice_currency=a.invoice_currency,
        accounting_amount=format_money(a.accounting_amount, a.accounting_currency),
        accounting_currency=a.accounting_currency,
        allocation_type=ALLOCATION_TYPE_PB[a.allocation_type],
        is_partial=a.allocation_type == rules.PARTIAL,
        composite_fx_rate=a.composite_fx_rate or "",
        composite_invoice_transaction_summary=a.composite_invoice_transaction_summary,
        invoice_id=pbconv.public_id("invoice", a.invoice_id),
        transaction_id=pbconv.public_id("transaction", a.transaction_id),
        subscription_id=str(a.subscription_id or ""),
        exchange_rate_id=pbconv.public_id("exchange_rate", a.exchange_rate_id),
        accounting_exchange_rate_id=pbconv.public_id(
            "exchange_rate", a.accounting_exchange_rate_id
        ),
        workspace_id=str(a.tenant_id),
        created_at=pbconv.ts(a.created_at),
        updated_at=pbconv.ts(a.updated_at),
        created_by=a.created_by,
        updated_by=a.updated_by,
        deleted_at=pbconv.ts(a.deleted_at),
        deleted_by=a.deleted_by or "",
        etag=a.etag,
    )


def settings_to_pb(s: rules.Settings) -> pb.WorkspaceSettings:
    return pb.WorkspaceSettings(
        workspace_id=str(s.workspace_id),
        accounting_currency=s.accounting_currency,
        name=s.name,
        updated_at=pbconv.ts(s.updated_at),
        updated_by=s.updated_by,
        etag=s.etag,
    )
