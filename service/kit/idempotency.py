"""Request-id idempotency (AIP-155), stored in the same transaction as the write.

`claim` inserts the key; a concurrent duplicate blocks on the unique entry until
the first transaction ends, then either replays the stored response (committed) or
claims the key itself (rolled back). The same key with a different request is
INVALID_ARGUMENT. Keys live at least `ttl`; an expired key is reused in place.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.kit import db, errors, sql
from service.kit.db import metadata

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("method", Text, nullable=False),
    Column("request_id", Text, nullable=False),
    Column("request_hash", LargeBinary, nullable=False),
    Column("response", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "method", "request_id"),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_t = idempotency_keys.c


def validate_request_id(value: str, field_path: str = "request_id") -> str | None:
    """Empty means no idempotency; otherwise 1..128 of [A-Za-z0-9._:-]."""
    if value == "":
        return None
    if not _REQUEST_ID.fullmatch(value):
        raise errors.invalid(
            field_path,
            "must be 1..128 characters of A-Z a-z 0-9 . _ : -",
            reason="INVALID_REQUEST_ID",
        )
    return value


async def claim(
    conn: db.Conn,
    *,
    tenant_id: uuid.UUID,
    method: str,
    request_id: str,
    request_hash: bytes,
    ttl: timedelta,
) -> bytes | None:
    """Claim the key for this transaction; return the stored response on a replay."""
    insert = pg_insert(idempotency_keys).values(
        tenant_id=tenant_id,
        method=method,
        request_id=request_id,
        request_hash=request_hash,
        expires_at=func.now() + ttl,
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[_t.tenant_id, _t.method, _t.request_id],
        set_={
            "request_hash": insert.excluded.request_hash,
            "response": None,
            "created_at": func.now(),
            "expires_at": insert.excluded.expires_at,
        },
        where=_t.expires_at < func.now(),
    ).returning(literal(1))
    if await sql.fetchrow(conn, stmt) is not None:
        return None
    row = await sql.fetchrow(
        conn,
        select(_t.request_hash, _t.response).where(
            _t.tenant_id == tenant_id, _t.method == method, _t.request_id == request_id
        ),
    )
    assert row is not None  # the conflicting row exists: we waited for its transaction
    if bytes(row["request_hash"]) != request_hash:
        raise errors.invalid(
            "request_id",
            "was already used with a different request",
            reason="REQUEST_ID_REUSED",
        )
    if row["response"] is None:  # pragma: no cover - the claimer always stores before commit
        raise errors.aborted("request with this request_id is in progress", "REQUEST_IN_PROGRESS")
    return bytes(row["response"])


async def store(
    conn: db.Conn, *, tenant_id: uuid.UUID, method: str, request_id: str, response: bytes
) -> None:
    await sql.execute(
        conn,
        update(idempotency_keys)
        .where(_t.tenant_id == tenant_id, _t.method == method, _t.request_id == request_id)
        .values(response=response),
    )
