"""Translate between protobuf messages and allocations (the edge only)."""

from __future__ import annotations

from invoicing.v1 import allocations_pb2 as pb

from service.allocations import service
from service.allocations.rules import FULL, PARTIAL
from service.edge import pbconv
from service.kit import errors, ids
from service.kit.money import format_money

ALLOCATION_TYPE_PB = {FULL: pb.ALLOCATION_TYPE_FULL, PARTIAL: pb.ALLOCATION_TYPE_PARTIAL}


def allocation_request(message: pb.Allocation) -> service.AllocationRequest:
    path = "allocation"
    if message.amount == "":
        raise errors.invalid(f"{path}.amount", "is required", reason="REQUIRED")
    return service.AllocationRequest(
        invoice_id=pbconv.required_id(message.invoice_id, "invoice", f"{path}.invoice_id"),
        transaction_id=pbconv.required_id(
            message.transaction_id, "transaction", f"{path}.transaction_id"
        ),
        amount=message.amount,
        currency=pbconv.optional_currency(message.currency, f"{path}.currency"),
        exchange_rate_id=pbconv.optional_id(
            message.exchange_rate_id, "exchange_rate", f"{path}.exchange_rate_id"
        ),
        subscription_id=ids.parse_uuid(message.subscription_id, f"{path}.subscription_id"),
    )


def allocation_to_pb(a: service.Allocation) -> pb.Allocation:
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
        is_partial=a.allocation_type == PARTIAL,
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
