"""Workspace settings persistence."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.kit import db, rows, sql
from service.kit.auth import Principal
from service.workspaces.models import workspace_settings
from service.workspaces.rules import Settings


def _build_get(for_update: bool) -> Select[Any]:
    stmt = select(workspace_settings).where(workspace_settings.c.tenant_id == sql.param("tenant"))
    return stmt.with_for_update() if for_update else stmt


_GET = {lock: sql.Prepared(functools.partial(_build_get, lock)) for lock in (False, True)}


async def get(conn: db.Conn, tenant_id: uuid.UUID, *, for_update: bool = False) -> Settings:
    row = await sql.fetchrow(conn, _GET[for_update], {"tenant": tenant_id})
    return Settings(workspace_id=tenant_id) if row is None else _from_row(row)


async def upsert(conn: db.Conn, principal: Principal, values: Mapping[str, Any]) -> Settings:
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
    return _from_row(await rows.returning(conn, stmt))


def _from_row(row: Mapping[str, Any]) -> Settings:
    return Settings(
        workspace_id=row["tenant_id"],
        name=row["name"],
        accounting_currency=row["accounting_currency"],
        company_id=row["company_id"],
        version=row["version"],
        updated_at=row["updated_at"],
        updated_by=row["updated_by"],
    )
