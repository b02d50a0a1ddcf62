"""Persistence of transactions, exchange rates, allocations and workspace settings.

Statements are SQLAlchemy Core compiled once (`sql.Prepared`) and run on asyncpg. Every
read is scoped by tenant (and app, for app tokens) in its WHERE clause, backed by RLS.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import Select, Table, and_, case, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.allocations import rules
from service.allocations.models import allocations, exchange_rates, transactions, workspace_settings
from service.kit import db, errors, sql
from service.kit.auth import Principal


def _scoped_get(table: Table, *, app_scoped: bool, for_update: bool) -> sql.Prepared:
    def build() -> Select[Any]:
        c = table.c
        stmt = select(table).where(c.tenant_id == sql.param("tenant"), c.id == sql.param("id"))
        if app_scoped:
            stmt = stmt.where(c.app_id == sql.param("app"))
        return stmt.with_for_update() if for_update else stmt

    return sql.Prepared(build)


def _gets(table: Table) -> dict[tuple[bool, bool], sql.Prepared]:
    return {
        (app, lock): _scoped_get(table, app_scoped=app, for_update=lock)
        for app in (False, True)
        for lock in (False, True)
    }


_GET_TRANSACTION = _gets(transactions)
_GET_ALLOCATION = _gets(allocations)
_GET_RATE = _scoped_get(exchange_rates, app_scoped=False, for_update=False)


def _params(principal: Principal, row_id: uuid.UUID) -> dict[str, Any]:
    params: dict[str, Any] = {"tenant": principal.tenant_id, "id": row_id}
    if principal.app_id is not None:
        params["app"] = principal.app_id
    return params


def _scope(table: Table, principal: Principal) -> Any:
    clause = table.c.tenant_id == principal.tenant_id
    if principal.app_id is not None:
        clause = and_(clause, table.c.app_id == principal.app_id)
    return clause


async def _returning(conn: db.Conn, stmt: Any) -> asyncpg.Record:
    row = await sql.fetchrow(conn, stmt)
    if row is None:  # pragma: no cover - callers lock the row first
        raise errors.aborted("the row changed concurrently; retry", "CONCURRENT_UPDATE")
    return row


# ---- transactions ------------------------------------------------------------------


async def get_transaction(
    conn: db.Conn, principal: Principal, transaction_id: uuid.UUID, *, for_update: bool = False
) -> rules.Transaction | None:
    statement = _GET_TRANSACTION[principal.app_id is not None, for_update]
    row = await sql.fetchrow(conn, statement, _params(principal, transaction_id))
    return None if row is None else transaction_from_row(row)


async def insert_transaction(conn: db.Conn, values: Mapping[str, Any]) -> rules.Transaction:
    return transaction_from_row(await _insert(conn, transactions, values))


async def _insert(conn: db.Conn, table: Table, values: Mapping[str, Any]) -> asyncpg.Record:
    compiled, params = sql.insert_returning(table, values)
    row = await sql.fetchrow(conn, compiled, params)
    assert row is not None, "INSERT ... RETURNING returns its row"
    return row


def _build_add_allocated(app_scoped: bool) -> Any:
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
    False: sql.Prepared(lambda: _build_add_allocated(False)),
    True: sql.Prepared(lambda: _build_add_allocated(True)),
}


async def add_allocated(
    conn: db.Conn, principal: Principal, transaction_id: uuid.UUID, delta: Decimal
) -> rules.Transaction:
    """allocated_amount += delta (negative for a reversal), on the locked row."""
    params = {**_params(principal, transaction_id), "delta": delta, "by": principal.subject}
    row = await sql.fetchrow(conn, _ADD_ALLOCATED[principal.app_id is not None], params)
    if row is None:  # pragma: no cover - callers lock the row first
        raise errors.aborted("the transaction changed concurrently; retry", "CONCURRENT_UPDATE")
    return transaction_from_row(row)


async def update_transaction(
    conn: db.Conn, principal: Principal, transaction_id: uuid.UUID, values: Mapping[str, Any]
) -> rules.Transaction:
    c = transactions.c
    stmt = (
        transactions.update()
        .where(_scope(transactions, principal), c.id == transaction_id)
        .values(
            **values, version=c.version + 1, updated_at=func.now(), updated_by=principal.subject
        )
        .returning(*transactions.c)
    )
    return transaction_from_row(await _returning(conn, stmt))


def transaction_from_row(row: Mapping[str, Any]) -> rules.Transaction:
    return rules.Transaction(**{name: row[name] for name in _TRANSACTION_FIELDS})


_TRANSACTION_FIELDS = tuple(rules.Transaction.__dataclass_fields__)


# ---- exchange rates ----------------------------------------------------------------


async def get_rate(conn: db.Conn, principal: Principal, rate_id: uuid.UUID) -> rules.Rate | None:
    row = await sql.fetchrow(conn, _GET_RATE, {"tenant": principal.tenant_id, "id": rate_id})
    return None if row is None else rate_from_row(row)


async def insert_rate(conn: db.Conn, values: Mapping[str, Any]) -> rules.Rate:
    stmt = exchange_rates.insert().values(**values).returning(*exchange_rates.c)
    try:
        return rate_from_row(await _returning(conn, stmt))
    except asyncpg.UniqueViolationError as exc:
        raise errors.already_exists(
            "an exchange rate for this pair, date and source already exists",
            "EXCHANGE_RATE_EXISTS",
            baseCurrency=str(values["base_currency"]),
            quoteCurrency=str(values["quote_currency"]),
            rateDate=values["rate_date"].isoformat(),
            source=str(values["source"]),
        ) from exc


def _build_find_rate() -> Select[Any]:
    r = exchange_rates.c
    source, target = sql.param("source"), sql.param("target")
    direct = and_(r.base_currency == source, r.quote_currency == target)
    inverse = and_(r.base_currency == target, r.quote_currency == source)
    return (
        select(exchange_rates)
        .where(
            r.tenant_id == sql.param("tenant"),
            or_(direct, inverse),
            r.rate_date <= sql.param("on", r.rate_date.type),
        )
        .order_by(r.rate_date.desc(), case((direct, 0), else_=1), r.source)
        .limit(1)
    )


_FIND_RATE = sql.Prepared(_build_find_rate)


async def find_rate(
    conn: db.Conn, principal: Principal, source: str, target: str, on: date
) -> rules.Rate | None:
    """The latest rate for the pair (either direction) dated on or before `on`; on one
    date the direct direction wins, then the source name."""
    params = {"tenant": principal.tenant_id, "source": source, "target": target, "on": on}
    row = await sql.fetchrow(conn, _FIND_RATE, params)
    return None if row is None else rate_from_row(row)


def rate_from_row(row: Mapping[str, Any]) -> rules.Rate:
    return rules.Rate(
        id=row["id"],
        base_currency=row["base_currency"],
        quote_currency=row["quote_currency"],
        rate=row["rate"],
        rate_date=row["rate_date"],
        source=row["source"],
        created_at=row["created_at"],
        created_by=row["created_by"],
    )


# ---- allocations -------------------------------------------------------------------


async def get_allocation(
    conn: db.Conn, principal: Principal, allocation_id: uuid.UUID, *, for_update: bool = False
) -> rules.Allocation | None:
    statement = _GET_ALLOCATION[principal.app_id is not None, for_update]
    row = await sql.fetchrow(conn, statement, _params(principal, allocation_id))
    return None if row is None else allocation_from_row(row)


async def insert_allocation(conn: db.Conn, values: Mapping[str, Any]) -> rules.Allocation:
    return allocation_from_row(await _insert(conn, allocations, values))


async def update_allocation(
    conn: db.Conn, principal: Principal, allocation_id: uuid.UUID, values: Mapping[str, Any]
) -> rules.Allocation:
    c = allocations.c
    stmt = (
        allocations.update()
        .where(_scope(allocations, principal), c.id == allocation_id)
        .values(
            **values, version=c.version + 1, updated_at=func.now(), updated_by=principal.subject
        )
        .returning(*allocations.c)
    )
    return allocation_from_row(await _returning(conn, stmt))


_ALLOCATION_FIELDS = tuple(rules.Allocation.__dataclass_fields__)


def allocation_from_row(row: Mapping[str, Any]) -> rules.Allocation:
    return rules.Allocation(**{name: row[name] for name in _ALLOCATION_FIELDS})


# ---- workspace settings ------------------------------------------------------------


def _build_get_settings(for_update: bool) -> Select[Any]:
    stmt = select(workspace_settings).where(workspace_settings.c.tenant_id == sql.param("tenant"))
    return stmt.with_for_update() if for_update else stmt


_GET_SETTINGS = {
    False: sql.Prepared(lambda: _build_get_settings(False)),
    True: sql.Prepared(lambda: _build_get_settings(True)),
}


async def get_settings(
    conn: db.Conn, tenant_id: uuid.UUID, *, for_update: bool = False
) -> rules.Settings:
    row = await sql.fetchrow(conn, _GET_SETTINGS[for_update], {"tenant": tenant_id})
    return rules.Settings(workspace_id=tenant_id) if row is None else _settings_from_row(row)


async def upsert_settings(
    conn: db.Conn, principal: Principal, values: Mapping[str, Any]
) -> rules.Settings:
    s = workspace_settings
    stamp = {"updated_at": func.now(), "updated_by": principal.subject}
    stmt = (
        pg_insert(s)
        .values(tenant_id=principal.tenant_id, **values, **stamp)
        .on_conflict_do_update(
            index_elements=[s.c.tenant_id], set_={**values, **stamp, "version": s.c.version + 1}
        )
        .returning(*s.c)
    )
    return _settings_from_row(await _returning(conn, stmt))


def _settings_from_row(row: Mapping[str, Any]) -> rules.Settings:
    return rules.Settings(
        workspace_id=row["tenant_id"],
        name=row["name"],
        accounting_currency=row["accounting_currency"],
        version=row["version"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )
