"""Translate between protobuf messages and transactions (the edge only)."""

from __future__ import annotations

from invoicing.v1 import allocations_pb2 as pb

from service.edge import pbconv
from service.kit import errors, ids
from service.kit.money import format_money
from service.transactions import service

DIRECTIONS = {
    pb.TRANSACTION_DIRECTION_RECEIVABLE: service.RECEIVABLE,
    pb.TRANSACTION_DIRECTION_PAYABLE: service.PAYABLE,
}
DIRECTION_PB = {v: k for k, v in DIRECTIONS.items()}


def transaction_draft(message: pb.Transaction) -> service.TransactionDraft:
    path = "transaction"
    if message.direction not in DIRECTIONS:
        reason = "REQUIRED" if message.direction == 0 else "INVALID_ENUM"
        raise errors.invalid(f"{path}.direction", "must be RECEIVABLE or PAYABLE", reason=reason)
    currency = pbconv.currency(message.currency, f"{path}.currency")
    return service.TransactionDraft(
        direction=DIRECTIONS[message.direction],
        amount=service.parse_positive(message.amount, currency, f"{path}.amount"),
        currency=currency,
        value_date=pbconv.date_from_pb(message.value_date, f"{path}.value_date"),
        reference=pbconv.text(message.reference, f"{path}.reference", max_length=255),
        counterparty_id=ids.parse_uuid(message.counterparty_id, f"{path}.counterparty_id"),
        subscription_id=ids.parse_uuid(message.subscription_id, f"{path}.subscription_id"),
    )


def transaction_to_pb(t: service.Transaction) -> pb.Transaction:
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
