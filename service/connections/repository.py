"""Connection persistence (SQLAlchemy Core compiled once, run on asyncpg); every read
scoped to the principal's tenant, backed by row-level security."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Text, any_, select
from sqlalchemy.dialects.postgresql import ARRAY

from service.connections.models import connection_routes, connections
from service.connections.rules import Connection
from service.kit import db, rows, sql
from service.kit.auth import Principal

_get = rows.ScopedGet(connections, app_scoped=False)


async def get(
    conn: db.Conn, principal: Principal, connection_id: uuid.UUID, *, for_update: bool = False
) -> Connection | None:
    row = await _get(conn, principal, connection_id, for_update=for_update)
    return None if row is None else from_row(row)


async def insert(conn: db.Conn, values: Mapping[str, Any]) -> Connection:
    return from_row(await rows.insert(conn, connections, values))


async def update(
    conn: db.Conn, principal: Principal, connection_id: uuid.UUID, values: Mapping[str, Any]
) -> Connection:
    return from_row(await rows.update(conn, connections, principal, connection_id, values))


async def update_quietly(
    conn: db.Conn, principal: Principal, connection_id: uuid.UUID, values: Mapping[str, Any]
) -> Connection:
    """Polling's own bookkeeping (cursor, health, counts): neither the etag nor
    updated_at move, so a caller's If-Match is not broken by a poll."""
    c = connections.c
    stmt = (
        connections.update()
        .where(c.tenant_id == principal.tenant_id, c.id == connection_id)
        .values(**values)
        .returning(*connections.c)
    )
    return from_row(await rows.returning(conn, stmt))


async def insert_route(conn: db.Conn, tenant_id: uuid.UUID, connection_id: uuid.UUID) -> None:
    await sql.execute(
        conn,
        connection_routes.insert().values(connection_id=connection_id, tenant_id=tenant_id),
    )


_ROUTE = sql.Prepared(
    lambda: select(connection_routes.c.tenant_id).where(
        connection_routes.c.connection_id == sql.param("id")
    )
)


async def route_tenant(conn: db.Conn, connection_id: uuid.UUID) -> uuid.UUID | None:
    row = await sql.fetchrow(conn, _ROUTE, {"id": connection_id})
    return None if row is None else row["tenant_id"]


def _build_live_of() -> Any:
    c = connections.c
    return select(connections).where(
        c.tenant_id == sql.param("tenant"),
        c.provider == any_(sql.param("providers", ARRAY(Text()))),
        c.active.is_(True),
        c.deleted_at.is_(None),
    )


_LIVE_OF = sql.Prepared(_build_live_of)


async def live_of(
    conn: db.Conn, principal: Principal, providers: tuple[str, ...]
) -> list[Connection]:
    """The tenant's active, live connections of these providers (at most one each; the
    partial unique index answers it). Compiled once: every IssueInvoice asks it."""
    params = {"tenant": principal.tenant_id, "providers": list(providers)}
    return [from_row(row) for row in await sql.fetch(conn, _LIVE_OF, params)]


def from_row(row: Mapping[str, Any]) -> Connection:
    return rows.to_dataclass(Connection, row)
