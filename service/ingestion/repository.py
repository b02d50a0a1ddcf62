"""Webhook events persistence (scoped to the tenant, under RLS)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from sqlalchemy import Text, cast, exists, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.ingestion.models import webhook_events
from service.kit import db, sql
from service.kit.work import work_items

_e = webhook_events.c


def _build_store(task: str) -> Any:
    """Store the event and, if it is new, make the connection's processing item due (one
    statement: the webhook's answer waits for it)."""
    stored = (
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
        .cte("stored")
    )
    w = work_items.c
    due = (
        pg_insert(work_items)
        .from_select(
            ["tenant_id", "task", "key", "due_at"],
            select(
                sql.param("tenant", w.tenant_id.type),
                literal(task),
                cast(sql.param("connection", _e.connection_id.type), Text),
                func.now(),
            ).where(exists(select(stored.c.received_at))),
        )
        .on_conflict_do_update(
            index_elements=[w.tenant_id, w.task, w.key],
            set_={"due_at": func.least(w.due_at, func.now())},
        )
        .cte("due")
    )
    return select(func.count()).select_from(stored).add_cte(due)


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


_STORES: dict[str, sql.Prepared] = {}


async def store(
    conn: db.Conn,
    tenant_id: uuid.UUID,
    connection_id: uuid.UUID,
    webhook_id: str,
    event_type: str,
    body: bytes,
    *,
    task: str,
) -> bool:
    """Store an event and wake its processing; False when this webhook-id was already
    received (a redelivery: nothing changes)."""
    if task not in _STORES:
        _STORES[task] = sql.Prepared(lambda: _build_store(task))
    params = {
        "tenant": tenant_id,
        "connection": connection_id,
        "webhook_id": webhook_id,
        "type": event_type,
        "body": body,
    }
    return bool(await sql.fetchval(conn, _STORES[task], params))


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
