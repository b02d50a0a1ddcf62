"""Counterparty persistence; every statement scoped to the principal's tenant (and RLS)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from service.counterparties.models import counterparties
from service.counterparties.rules import Counterparty
from service.kit import db, rows, sql
from service.kit.auth import Principal

_get = rows.ScopedGet(counterparties, app_scoped=False)
_c = counterparties.c


async def get(
    conn: db.Conn, principal: Principal, counterparty_id: uuid.UUID, *, for_update: bool = False
) -> Counterparty | None:
    row = await _get(conn, principal, counterparty_id, for_update=for_update)
    return None if row is None else from_row(row)


async def insert(conn: db.Conn, values: Mapping[str, Any]) -> Counterparty:
    return from_row(await rows.insert(conn, counterparties, values))


async def update(
    conn: db.Conn, principal: Principal, counterparty_id: uuid.UUID, values: Mapping[str, Any]
) -> Counterparty:
    return from_row(await rows.update(conn, counterparties, principal, counterparty_id, values))


def _build_by(column: str) -> Any:
    return (
        select(counterparties)
        .where(
            _c.tenant_id == sql.param("tenant"),
            getattr(_c, column) == sql.param("value"),
            _c.deleted_at.is_(None),
        )
        .order_by(_c.id)
        .limit(50)
    )


_BY_SIRET = sql.Prepared(lambda: _build_by("siret"))
_BY_SIREN = sql.Prepared(lambda: _build_by("siren"))


async def live_by(
    conn: db.Conn, principal: Principal, *, siret: str | None, siren: str | None
) -> tuple[list[Counterparty], list[Counterparty]]:
    """The live counterparties with this SIRET, and with this SIREN."""
    tenant = principal.tenant_id
    by_siret = (
        [from_row(r) for r in await sql.fetch(conn, _BY_SIRET, {"tenant": tenant, "value": siret})]
        if siret
        else []
    )
    by_siren = (
        [from_row(r) for r in await sql.fetch(conn, _BY_SIREN, {"tenant": tenant, "value": siren})]
        if siren
        else []
    )
    return by_siret, by_siren


def from_row(row: Mapping[str, Any]) -> Counterparty:
    return rows.to_dataclass(Counterparty, row)
