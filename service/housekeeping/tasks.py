"""Background tasks of the kit's tables."""

from __future__ import annotations

from service.edge.modules import TaskResult
from service.edge.runtime import Runtime
from service.kit import db, idempotency
from service.kit.auth import Principal

PURGE_BATCH = 1000


async def purge_idempotency_keys(
    runtime: Runtime, conn: db.Conn, principal: Principal, key: str
) -> TaskResult:
    """Delete one batch of the tenant's expired idempotency keys; a full batch means
    there may be more, so the item is due again at once."""
    deleted = await idempotency.purge_expired(
        conn, tenant_id=principal.tenant_id, batch=PURGE_BATCH
    )
    return TaskResult(count=deleted, more=deleted == PURGE_BATCH)
