"""The worker's ingestion tasks: one page of a connection's poll per run."""

from __future__ import annotations

import uuid
from datetime import timedelta

from service.edge.modules import TaskResult
from service.edge.runtime import Runtime
from service.ingestion import service, yooz
from service.kit import db
from service.kit.auth import Principal


async def poll(runtime: Runtime, conn: db.Conn, principal: Principal, key: str) -> TaskResult:
    """A page of the connection's poll; more pages: due again at once (the lease is let go
    between pages, the connection row is locked during each)."""
    connection_id = uuid.UUID(key)
    deps = runtime.deps
    try:
        outcome = await service.poll_page(
            conn, principal, connection_id=connection_id, deps=deps, client=service.client(deps)
        )
    except yooz.ProviderError as exc:
        retry = await service.poll_failed(
            conn, principal, connection_id=connection_id, error=exc, deps=deps
        )
        # Refused credentials wait for a new key (which schedules a poll at once).
        return TaskResult(next_in=retry if retry is not None else timedelta(days=1))
    count = sum(outcome.counts.values())
    if outcome.more:
        return TaskResult(count=count, more=True)
    return TaskResult(count=count, next_in=outcome.next_in)


async def webhooks(runtime: Runtime, conn: db.Conn, principal: Principal, key: str) -> TaskResult:
    """Apply the connection's stored webhook events, a batch per run, in order."""
    count, more = await service.process_webhooks(
        conn, principal, connection_id=uuid.UUID(key), deps=runtime.deps, batch=100
    )
    return TaskResult(count=count, more=more)
