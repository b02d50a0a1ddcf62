"""Webhook events persistence (scoped to the tenant, under RLS)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.ingestion.models import webhook_events
from service.kit import db, sql

_e = webhook_events.c

_STORE = sql.Prepared(
    lambda: (
        pg_insert(webhook_events)
        .values(
            tenant_id=sql.param("tenant"),
            connection_id=sql.param("connection"),
            webhook_id=sql.param("webhook_id"),
            event_type=sql.param("type"),
            body=sql.param("body", _e.body.type),
        )
        .on_conflict_do_nothing(index_elements=[_e.tenant_id, _e.connection_id, _e.webhook_id])
        .returning(_e.received_at)
    )
)

_PENDING = sql.Prepared(
    lambda: (
        select(webhook_events)
        .where(
            _e.tenant_id == sql.param("tenant"),
            _e.connection_id == sql.param("connection"),
            _e.processed_at.is_(None),
        )
        .order_by(_e.received_at, _e.webhook_id)
        .limit(sql.param("limit"))
        .with_for_update(skip_locked=True)
    )
)

_DONE = sql.Prepared(
    lambda: (
        webhook_events.update()
        .where(
            _e.tenant_id == sql.param("tenant"),
            _e.connection_id == sql.param("connection"),
            _e.webhook_id == sql.param("webhook_id"),
        )
        .values(processed_at=func.now(), outcome=sql.param("outcome"))
    )
)


async def store(
    conn: db.Conn,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    webhook_id: str,
    event_type: str,
    body: bytes,
) -> bool:
    """Store an event; False when this webhook-id was already received (a redelivery)."""
    params = {
        "tenant": tenant_id,
        "connection": connection_id,
        "webhook_id": webhook_id,
        "type": event_type,
        "body": body,
    }
    return await sql.fetchrow(conn, _STORE, params) is not None


async def pending(
    conn: db.Conn, tenant_id: uuid.UUID, connection_id: uuid.UUID, limit: int
) -> list[asyncpg.Record]:
    params: dict[str, Any] = {"tenant": tenant_id, "connection": connection_id, "limit": limit}
    return list(await sql.fetch(conn, _PENDING, params))


async def done(
    conn: db.Conn, tenant_id: uuid.UUID, connection_id: uuid.UUID, webhook_id: str, outcome: str
) -> None:
    params = {
        "tenant": tenant_id,
        "connection": connection_id,
        "webhook_id": webhook_id,
        "outcome": outcome[:500],
    }
    await sql.execute(conn, _DONE, params)
