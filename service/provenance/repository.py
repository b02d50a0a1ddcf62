"""Provenance persistence (SQLAlchemy Core compiled once, run on asyncpg); every statement
scoped to the principal's tenant, backed by row-level security."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.kit import db, rows, sql
from service.kit.auth import Principal
from service.provenance.models import invoice_provenances
from service.provenance.rules import Provenance

_get = rows.ScopedGet(invoice_provenances, app_scoped=False)
_t = invoice_provenances.c


async def get(
    conn: db.Conn, principal: Principal, provenance_id: uuid.UUID, *, for_update: bool = False
) -> Provenance | None:
    row = await _get(conn, principal, provenance_id, for_update=for_update)
    return None if row is None else from_row(row)


async def insert(conn: db.Conn, values: Mapping[str, Any]) -> Provenance:
    return from_row(await rows.insert(conn, invoice_provenances, values))


def _build_insert_if_absent() -> Any:
    stmt = pg_insert(invoice_provenances).values(
        tenant_id=sql.param("tenant"),
        id=sql.param("id"),
        invoice_id=sql.param("invoice"),
        connection_id=sql.param("connection"),
        direction=sql.param("direction", _t.direction.type),
        created_by=sql.param("by"),
    )
    return stmt.on_conflict_do_nothing(
        index_elements=[_t.tenant_id, _t.invoice_id, _t.connection_id, _t.direction],
        index_where=_t.deleted_at.is_(None),
    ).returning(*invoice_provenances.c)


def _build_live() -> Any:
    return select(invoice_provenances).where(
        _t.tenant_id == sql.param("tenant"),
        _t.invoice_id == sql.param("invoice"),
        _t.connection_id == sql.param("connection"),
        _t.direction == sql.param("direction", _t.direction.type),
        _t.deleted_at.is_(None),
    )


_INSERT_IF_ABSENT = sql.Prepared(_build_insert_if_absent)
_LIVE = sql.Prepared(_build_live)


async def insert_if_absent(conn: db.Conn, values: Mapping[str, Any]) -> Provenance:
    """The live row for (invoice, connection, direction): inserted, or the existing one."""
    params = {
        "tenant": values["tenant_id"],
        "id": values["id"],
        "invoice": values["invoice_id"],
        "connection": values["connection_id"],
        "direction": values["direction"],
        "by": values["created_by"],
    }
    row = await sql.fetchrow(conn, _INSERT_IF_ABSENT, params)
    if row is None:
        del params["id"], params["by"]
        row = await sql.fetchrow(conn, _LIVE, params)
        assert row is not None, "the conflicting live row is visible once its writer committed"
    return from_row(row)


async def soft_delete(conn: db.Conn, principal: Principal, provenance_id: uuid.UUID) -> Provenance:
    stmt = (
        invoice_provenances.update()
        .where(_t.tenant_id == principal.tenant_id, _t.id == provenance_id)
        .values(deleted_at=func.now(), updated_at=func.now(), deleted_by=principal.subject)
        .returning(*invoice_provenances.c)
    )
    return from_row(await rows.returning(conn, stmt))


def from_row(row: Mapping[str, Any]) -> Provenance:
    return rows.to_dataclass(Provenance, row)
