"""Allocation persistence; every read scoped to the principal, backed by RLS."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from service.allocations.models import allocations
from service.allocations.rules import Allocation, NewAllocation
from service.kit import db, ids, rows
from service.kit.auth import Principal

_get = rows.ScopedGet(allocations)


async def get(
    conn: db.Conn, principal: Principal, allocation_id: uuid.UUID, *, for_update: bool = False
) -> Allocation | None:
    row = await _get(conn, principal, allocation_id, for_update=for_update)
    return None if row is None else from_row(row)


async def insert(conn: db.Conn, principal: Principal, new: NewAllocation) -> Allocation:
    a = new.amounts
    values = {
        "tenant_id": principal.tenant_id,
        "id": ids.new_uuid7(),
        "app_id": principal.app_id,
        "invoice_id": new.invoice_id,
        "transaction_id": new.transaction_id,
        "exchange_rate_id": new.exchange_rate_id,
        "accounting_exchange_rate_id": new.accounting_exchange_rate_id,
        "subscription_id": new.subscription_id,
        "amount": a.amount,
        "currency": a.currency,
        "invoice_amount": a.invoice_amount,
        "invoice_currency": a.invoice_currency,
        "accounting_amount": a.accounting_amount,
        "accounting_currency": a.accounting_currency,
        "allocation_type": new.allocation_type,
        "composite_fx_rate": new.composite_fx_rate,
        "composite_invoice_transaction_summary": new.composite_invoice_transaction_summary,
        "created_by": principal.subject,
        "updated_by": principal.subject,
    }
    return from_row(await rows.insert(conn, allocations, values))


async def update(
    conn: db.Conn, principal: Principal, allocation_id: uuid.UUID, values: Mapping[str, Any]
) -> Allocation:
    return from_row(await rows.update(conn, allocations, principal, allocation_id, values))


def from_row(row: Mapping[str, Any]) -> Allocation:
    return rows.to_dataclass(Allocation, row)
