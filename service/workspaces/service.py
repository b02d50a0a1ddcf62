"""Workspace settings use cases. Each runs inside the caller's transaction.

Other resources use workspaces only through this module: `get_settings` (the accounting
currency of an allocation), `TABLE` and `DEFAULT_ACCOUNTING_CURRENCY` (related-object
filters on `workspace.*`, where a never-configured workspace shows the defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.kit import db, etags
from service.kit.auth import Principal
from service.workspaces import repository
from service.workspaces.models import workspace_settings
from service.workspaces.rules import DEFAULT_ACCOUNTING_CURRENCY, Settings

TABLE = workspace_settings
__all__ = ["DEFAULT_ACCOUNTING_CURRENCY", "TABLE", "Settings"]


async def get_settings(conn: db.Conn, principal: Principal) -> Settings:
    return await repository.get(conn, principal.tenant_id)


async def update_settings(
    conn: db.Conn, principal: Principal, *, changes: Mapping[str, Any], etag: str
) -> Settings:
    current = await repository.get(conn, principal.tenant_id, for_update=True)
    etags.check(current.etag, etag, "workspace settings")
    if not changes:
        return current
    return await repository.upsert(conn, principal, changes)
