"""Exchange rate persistence; every read scoped to the tenant, backed by RLS."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from typing import Any

import asyncpg
from sqlalchemy import Select, and_, case, or_, select

from service.exchange_rates.models import exchange_rates
from service.exchange_rates.rules import Rate
from service.kit import db, errors, rows, sql
from service.kit.auth import Principal

_get = rows.ScopedGet(exchange_rates, app_scoped=False)


async def get(conn: db.Conn, principal: Principal, rate_id: uuid.UUID) -> Rate | None:
    row = await _get(conn, principal, rate_id)
    return None if row is None else from_row(row)


async def insert(conn: db.Conn, values: Mapping[str, Any]) -> Rate:
    try:
        return from_row(await rows.insert(conn, exchange_rates, values))
    except asyncpg.UniqueViolationError as exc:
        raise errors.already_exists(
            "an exchange rate for this pair, date and source already exists",
            "EXCHANGE_RATE_EXISTS",
            baseCurrency=str(values["base_currency"]),
            quoteCurrency=str(values["quote_currency"]),
            rateDate=values["rate_date"].isoformat(),
            source=str(values["source"]),
        ) from exc


def _build_find() -> Select[Any]:
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


_FIND = sql.Prepared(_build_find)


async def find(
    conn: db.Conn, principal: Principal, source: str, target: str, on: date
) -> Rate | None:
    """The latest rate for the pair (either direction) dated on or before `on`; on one
    date the direct direction wins, then the source name."""
    params = {"tenant": principal.tenant_id, "source": source, "target": target, "on": on}
    row = await sql.fetchrow(conn, _FIND, params)
    return None if row is None else from_row(row)


def from_row(row: Mapping[str, Any]) -> Rate:
    return rows.to_dataclass(Rate, row)
