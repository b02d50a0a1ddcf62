"""The one call helper every servicer uses: one transaction per RPC (the tenant set,
serialization failures retried), single-statement reads, and request-id idempotency
stored in the same transaction as the write."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

import asyncpg
from google.protobuf.message import Message

from service.edge import pipeline
from service.kit import auth, db, idempotency
from service.kit.auth import Principal
from service.kit.keyring import KeyRing

T = TypeVar("T")
M = TypeVar("M", bound=Message)
Work = Callable[[db.Conn, Principal], Awaitable[T]]
MAX_ATTEMPTS = 3


class Calls:
    """Runs a servicer's work for the principal of the call being served."""

    def __init__(
        self,
        database: db.Database,
        *,
        idempotency_ttl: timedelta,
        keys: KeyRing | None = None,
    ) -> None:
        self.database = database
        self.idempotency_ttl = idempotency_ttl
        self.keys = keys or KeyRing.ephemeral()

    async def run(self, work: Work[T], *, workspace_id: str = "") -> T:
        """`work` in one transaction, as the caller (or in the explicit workspace)."""
        principal = auth.current().in_workspace(workspace_id)
        return await self.transaction(principal, lambda conn: work(conn, principal))

    async def read_one(self, work: Work[T]) -> T:
        """A read made of one statement that scopes itself to the tenant (no BEGIN,
        no COMMIT: one round trip instead of three)."""
        principal = auth.current()
        async with db.single_statement(self.database) as conn:
            return await work(conn, principal)

    async def idempotent(
        self, request: Message, work: Work[M], *, secrets: Sequence[str] = ()
    ) -> M:
        """`work` once per (tenant, rpc, request.request_id); retries replay the first
        response. Without a request_id it simply runs. The fields named in `secrets`
        enter the stored fingerprint only through an HMAC keyed by the key ring, so the
        idempotency table lets nobody test guesses of a secret."""
        principal = auth.current()
        key = idempotency.validate_request_id(getattr(request, "request_id", ""))
        if key is None:
            return await self.transaction(principal, lambda conn: work(conn, principal))
        method = pipeline.current_call().method
        digest, *equivalent = self._fingerprints(request, secrets)

        async def once(conn: db.Conn) -> M:
            stored = await idempotency.claim(
                conn,
                tenant_id=principal.tenant_id,
                app_id=principal.app_id,
                method=method.name,
                request_id=key,
                request_hash=digest,
                ttl=self.idempotency_ttl,
                equivalent=equivalent,
            )
            if stored is not None:
                pipeline.current_call().trailing["idempotent-replayed"] = "true"
                replayed: M = method.response_cls.FromString(stored)  # type: ignore[assignment]
                return replayed
            response = await work(conn, principal)
            await idempotency.store(
                conn,
                tenant_id=principal.tenant_id,
                app_id=principal.app_id,
                method=method.name,
                request_id=key,
                response=response.SerializeToString(deterministic=True),
            )
            return response

        return await self.transaction(principal, once)

    def _fingerprints(self, request: Message, secrets: Sequence[str]) -> list[bytes]:
        present = [name for name in secrets if getattr(request, name)]
        if not present:
            return [request_hash(request)]
        hashes = []
        for key in self.keys.fingerprint_keys():
            copy = type(request)()
            copy.CopyFrom(request)
            for name in present:
                value = getattr(request, name).encode()
                setattr(copy, name, hmac.new(key, value, hashlib.sha256).hexdigest())
            hashes.append(request_hash(copy))
        return hashes

    async def transaction(self, principal: Principal, work: Callable[[db.Conn], Awaitable[T]]) -> T:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                async with db.unit_of_work(self.database, principal.tenant_id) as conn:
                    return await work(conn)
            except asyncpg.PostgresError as exc:
                if attempt == MAX_ATTEMPTS or db.sqlstate(exc) not in db.RETRYABLE:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def request_hash(request: Message) -> bytes:
    """Fingerprint of a request without its request_id (deterministic encoding)."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).digest()
