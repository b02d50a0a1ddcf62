"""Transaction persistence (SQLAlchemy Core compiled once, run on asyncpg); every read
scoped to the principal, backed by row-level security."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import func
from sqlalchemy.sql import ClauseElement

from service.kit import db, errors, rows, sql
from service.kit.auth import Principal
from service.transactions.models import transactions
from service.transactions.rules import Transaction

_get = rows.ScopedGet(transactions)


async def get(
    conn: db.Conn, principal: Principal, transaction_id: uuid.UUID, *, for_update: bool = False
) -> Transaction | None:
    row = await _get(conn, principal, transaction_id, for_update=for_update)
    return None if row is None else from_row(row)


async def insert(conn: db.Conn, values: Mapping[str, Any]) -> Transaction:
    return from_row(await rows.insert(conn, transactions, values))


async def update(
    conn: db.Conn, principal: Principal, transaction_id: uuid.UUID, values: Mapping[str, Any]
) -> Transaction:
    return from_row(await rows.update(conn, transactions, principal, transaction_id, values))


def _build_add_allocated(app_scoped: bool) -> ClauseElement:
    c = transactions.c
    where = [c.tenant_id == sql.param("tenant"), c.id == sql.param("id")]
    if app_scoped:
        where.append(c.app_id == sql.param("app"))
    return (
        transactions.update()
        .where(*where)
        .values(
            allocated_amount=c.allocated_amount + sql.param("delta", c.amount.type),
            version=c.version + 1,
            updated_at=func.now(),
            updated_by=sql.param("by"),
        )
        .returning(*transactions.c)
    )


_ADD_ALLOCATED = {
    app: sql.Prepared(functools.partial(_build_add_allocated, app)) for app in (False, True)
}


async def add_allocated(
    conn: db.Conn, principal: Principal, transaction_id: uuid.UUID, delta: Decimal
) -> Transaction:
    """allocated_amount += delta (negative for a reversal), on the locked row (one
    statement compiled once: this is on every allocation's path)."""
    params = {**rows.params(principal, transaction_id), "delta": delta, "by": principal.subject}
    row = await sql.fetchrow(conn, _ADD_ALLOCATED[principal.app_id is not None], params)
    if row is None:  # pragma: no cover - callers lock the row first
        raise errors.aborted("the transaction changed concurrently; retry", "CONCURRENT_UPDATE")
    return from_row(row)


def from_row(row: Mapping[str, Any]) -> Transaction:
    return rows.to_dataclass(Transaction, row)
