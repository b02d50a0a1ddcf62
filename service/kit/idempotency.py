"""Request-id idempotency (AIP-155), stored in the same transaction as the write.

`claim` inserts the key; a concurrent duplicate blocks on the unique entry until
the first transaction ends, then either replays the stored response (committed) or
claims the key itself (rolled back). The same key with a different request is
INVALID_ARGUMENT. Keys live at least `ttl`; an expired key is reused in place, and the
worker's purge task (`PURGE_TASK`, enqueued per tenant by the claim itself) deletes
expired keys in batches.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Interval,
    LargeBinary,
    PrimaryKeyConstraint,
    Select,
    Table,
    Text,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import ClauseElement

from service.kit import db, errors, sql
from service.kit.db import metadata
from service.kit.work import work_items

PURGE_TASK = "idempotency.purge"

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    # The caller's app ("" for a person's token): a key names a request of one app only, so
    # another app reusing it runs its own request and never sees this one's response.
    Column("app_id", Text, nullable=False, server_default=""),
    Column("method", Text, nullable=False),
    Column("request_id", Text, nullable=False),
    Column("request_hash", LargeBinary, nullable=False),
    Column("response", LargeBinary),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "app_id", "method", "request_id"),
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


def _build_claim() -> ClauseElement:
    ttl = sql.param("ttl", Interval())
    insert = pg_insert(idempotency_keys).values(
        tenant_id=sql.param("tenant"),
        app_id=sql.param("app"),
        method=sql.param("method"),
        request_id=sql.param("request_id"),
        request_hash=sql.param("hash", LargeBinary()),
        expires_at=func.now() + ttl,
    )
    # The tenant's purge item, in the same statement (a no-op once it exists).
    w = work_items.c
    enqueue = (
        pg_insert(work_items)
        .values(tenant_id=sql.param("tenant"), task=PURGE_TASK, key="", due_at=func.now() + ttl)
        .on_conflict_do_nothing(index_elements=[w.tenant_id, w.task, w.key])
        .cte("enqueued")
    )
    return (
        insert.on_conflict_do_update(
            index_elements=[_t.tenant_id, _t.app_id, _t.method, _t.request_id],
            set_={
                "request_hash": insert.excluded.request_hash,
                "response": None,
                "created_at": func.now(),
                "expires_at": insert.excluded.expires_at,
            },
            where=_t.expires_at < func.now(),
        )
        .returning(literal(1))
        .add_cte(enqueue)
    )


def _build_stored() -> Select[tuple[bytes, bytes]]:
    return select(_t.request_hash, _t.response).where(
        _t.tenant_id == sql.param("tenant"),
        _t.app_id == sql.param("app"),
        _t.method == sql.param("method"),
        _t.request_id == sql.param("request_id"),
    )


def _build_store() -> ClauseElement:
    return (
        update(idempotency_keys)
        .where(
            _t.tenant_id == sql.param("tenant"),
            _t.app_id == sql.param("app"),
            _t.method == sql.param("method"),
            _t.request_id == sql.param("request_id"),
        )
        .values(response=sql.param("response", LargeBinary()))
    )


def _build_purge() -> ClauseElement:
    keys = (
        select(_t.tenant_id, _t.app_id, _t.method, _t.request_id)
        .where(_t.tenant_id == sql.param("tenant"), _t.expires_at < func.now())
        .limit(sql.param("batch"))
        .with_for_update(skip_locked=True)
        .cte("expired")
    )
    return delete(idempotency_keys).where(
        _t.tenant_id == keys.c.tenant_id,
        _t.app_id == keys.c.app_id,
        _t.method == keys.c.method,
        _t.request_id == keys.c.request_id,
    )


_CLAIM = sql.Prepared(_build_claim)
_STORED = sql.Prepared(_build_stored)
_STORE = sql.Prepared(_build_store)
_PURGE = sql.Prepared(_build_purge)


async def claim(
    conn: db.Conn,
    *,
    tenant_id: uuid.UUID,
    app_id: str | None,
    method: str,
    request_id: str,
    request_hash: bytes,
    ttl: timedelta,
    equivalent: Sequence[bytes] = (),
) -> bytes | None:
    """Claim the key for this transaction; return the stored response on a replay.
    `equivalent` are other fingerprints of the same request (keyed under older keys)."""
    key = {"tenant": tenant_id, "app": app_id or "", "method": method, "request_id": request_id}
    if await sql.fetchrow(conn, _CLAIM, {**key, "hash": request_hash, "ttl": ttl}) is not None:
        return None
    row = await sql.fetchrow(conn, _STORED, key)
    assert row is not None  # the conflicting row exists: we waited for its transaction
    if bytes(row["request_hash"]) not in (request_hash, *equivalent):
        raise errors.invalid(
            "request_id",
            "was already used with a different request",
            reason="REQUEST_ID_REUSED",
        )
    if row["response"] is None:  # pragma: no cover - the claimer always stores before commit
        raise errors.aborted("request with this request_id is in progress", "REQUEST_IN_PROGRESS")
    return bytes(row["response"])


async def store(
    conn: db.Conn,
    *,
    tenant_id: uuid.UUID,
    app_id: str | None,
    method: str,
    request_id: str,
    response: bytes,
) -> None:
    params = {"tenant": tenant_id, "app": app_id or "", "method": method, "request_id": request_id}
    await sql.execute(conn, _STORE, {**params, "response": response})


async def purge_expired(conn: db.Conn, *, tenant_id: uuid.UUID, batch: int) -> int:
    """Delete up to `batch` expired keys of the tenant (rows another transaction holds
    are skipped, never waited for); returns how many."""
    status = await sql.execute(conn, _PURGE, {"tenant": tenant_id, "batch": batch})
    return int(status.rsplit(" ", 1)[-1])
