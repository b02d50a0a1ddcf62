"""The work queue the worker claims from: one row per (tenant, task, key) item of
background work, enqueued by the write that makes the work (in its transaction).

The table is not under tenant row-level security: the worker must see every tenant's
due items to claim them. It holds only ids, task names and scheduling state; the work
itself runs inside the item's tenant's unit of work, where RLS applies as usual.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.kit import db, sql
from service.kit.db import metadata

work_items = Table(
    "work_items",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("task", Text, nullable=False),
    Column("key", Text, nullable=False, server_default=""),
    Column("due_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("lease_owner", Text),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("runs", BigInteger, nullable=False, server_default="0"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("last_run_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("tenant_id", "task", "key"),
    Index("ix_work_items_task_due_at", "task", "due_at"),
    info={"system": True},
)


async def enqueue(
    conn: db.Conn,
    tenant_id: uuid.UUID,
    task: str,
    key: str = "",
    *,
    after: timedelta = timedelta(0),
    sooner: bool = False,
) -> None:
    """Make sure the item exists; with `sooner`, an existing item becomes due no later
    than `after` from now (new work for it arrived)."""
    w = work_items.c
    insert = pg_insert(work_items).values(
        tenant_id=tenant_id, task=task, key=key, due_at=func.now() + after
    )
    if sooner:
        stmt = insert.on_conflict_do_update(
            index_elements=[w.tenant_id, w.task, w.key],
            set_={"due_at": func.least(w.due_at, insert.excluded.due_at)},
        )
    else:
        stmt = insert.on_conflict_do_nothing(index_elements=[w.tenant_id, w.task, w.key])
    await sql.execute(conn, stmt)
