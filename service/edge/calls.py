"""Edge helpers shared by servicers: one transaction per RPC, retries, idempotency."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from service.kit import db, idempotency
from service.kit.auth import Principal

T = TypeVar("T")
M = TypeVar("M", bound=Message)
MAX_ATTEMPTS = 3


class Edge:
    """Opens the RPC's transaction (tenant set), retrying serialization failures."""

    def __init__(self, database: db.Database, *, idempotency_ttl: timedelta) -> None:
        self.database = database
        self.idempotency_ttl = idempotency_ttl

    async def run(self, principal: Principal, work: Callable[[db.Conn], Awaitable[T]]) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with db.unit_of_work(self.database, principal.tenant_id) as conn:
                    return await work(conn)
            except asyncpg.PostgresError as exc:
                if attempt == MAX_ATTEMPTS or db.sqlstate(exc) not in db.RETRYABLE:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def read_one(self, principal: Principal, work: Callable[[db.Conn], Awaitable[T]]) -> T:
        """A read made of one statement that scopes itself to the tenant (no BEGIN,
        no COMMIT: one round trip instead of three)."""
        async with db.single_statement(self.database) as conn:
            return await work(conn)

    async def run_idempotent(
        self,
        principal: Principal,
        *,
        method: str,
        request: Message,
        request_id: str,
        response_type: type[M],
        work: Callable[[db.Conn], Awaitable[M]],
    ) -> M:
        """Run `work` once per (tenant, method, request_id); replay the first response."""
        key = idempotency.validate_request_id(request_id)
        if key is None:
            return await self.run(principal, work)
        digest = request_hash(request)

        async def once(conn: db.Conn) -> M:
            stored = await idempotency.claim(
                conn,
                tenant_id=principal.tenant_id,
                method=method,
                request_id=key,
                request_hash=digest,
                ttl=self.idempotency_ttl,
            )
            if stored is not None:
                return response_type.FromString(stored)
            response = await work(conn)
            await idempotency.store(
                conn,
                tenant_id=principal.tenant_id,
                method=method,
                request_id=key,
                response=response.SerializeToString(deterministic=True),
            )
            return response

        return await self.run(principal, once)


def request_hash(request: Message) -> bytes:
    """Fingerprint of a request without its request_id (deterministic encoding)."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()
