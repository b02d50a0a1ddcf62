"""Database pool, the per-RPC unit of work with the tenant set, and error classification.

One transaction per RPC: the edge opens it with `unit_of_work`, services and
repositories only run statements on the connection they are handed. The tenant is set
per transaction with `set_config(..., true)` (in the same round trip as BEGIN), so
nothing leaks to the next user of a pooled connection and row-level security fails
closed. SQLAlchemy stays the schema, migration and query-building layer (service.kit.sql).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg
from sqlalchemy import CheckConstraint, Column, DateTime, Integer, MetaData, Text, text
from sqlalchemy.schema import SchemaItem

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def audited() -> list[SchemaItem]:
    """The columns every mutable resource table ends with: its version (the etag), server
    stamps and the soft-delete pair; new objects for each table."""
    now = text("now()")
    return [
        Column("version", Integer, nullable=False, server_default="1"),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=now),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=now),
        Column("created_by", Text, nullable=False),
        Column("updated_by", Text, nullable=False),
        Column("deleted_at", DateTime(timezone=True)),
        Column("deleted_by", Text),
        CheckConstraint("version > 0", name="version"),
    ]


Conn: TypeAlias = asyncpg.Connection


def async_url(url: str) -> str:
    """Accept plain `postgresql://` URLs and use the asyncpg driver (for SQLAlchemy)."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url[len(plain) :]
    return url


def plain_url(url: str) -> str:
    """Accept SQLAlchemy-style `postgresql+asyncpg://` URLs (for asyncpg)."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Release without `RESET ALL`: the tenant is transaction-local, so there is no
    session state to clear, and asyncpg still rolls back a transaction left open."""


@dataclass
class Database:
    pool: asyncpg.Pool

    @classmethod
    async def connect(cls, url: str, *, pool_size: int, statement_timeout_ms: int) -> Database:
        pool = await asyncpg.create_pool(
            plain_url(url),
            min_size=1,
            max_size=pool_size,
            reset=_no_reset,
            server_settings={
                "application_name": "invoicing",
                "statement_timeout": str(statement_timeout_ms),
                "lock_timeout": str(statement_timeout_ms),
            },
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()


@asynccontextmanager
async def unit_of_work(database: Database, tenant_id: uuid.UUID) -> AsyncIterator[Conn]:
    """A transaction with the tenant set; commits on success, rolls back on error."""
    if not isinstance(tenant_id, uuid.UUID):
        raise TypeError("tenant_id must be a UUID")
    async with database.pool.acquire() as conn:
        # One round trip; the uuid's text form is safe to inline.
        await conn.execute(f"BEGIN; SELECT set_config('app.tenant_id', '{tenant_id}', true)")
        try:
            yield conn
        except BaseException:
            await _rollback(conn)
            raise
        await conn.execute("COMMIT")


@asynccontextmanager
async def single_statement(database: Database) -> AsyncIterator[Conn]:
    """A pooled connection with no transaction and no tenant set, for reads that are
    one tenant-setting statement (`invoice_get`). Anything else sees no rows."""
    async with database.pool.acquire() as conn:
        yield conn


async def _rollback(conn: Conn) -> None:
    """Roll back; a connection that cannot (the server went away, a query was cut off
    mid-protocol) is terminated, so the pool replaces it instead of lending it out broken.
    The original error is what the caller sees."""
    if conn.is_closed():
        return
    try:
        await conn.execute("ROLLBACK")
    except CONNECTION_ERRORS:
        conn.terminate()


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (never parse the message text)."""
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def constraint_name(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), getattr(exc, "__cause__", None)):
        name = getattr(candidate, "constraint_name", None)
        if isinstance(name, str):
            return name
    return None


# What a lost or broken connection raises (the server crashed, restarted, or a query was
# cut off mid-protocol): the database is unavailable, not the request wrong.
CONNECTION_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
SERIALIZATION_FAILURE = "40001"
DEADLOCK_DETECTED = "40P01"
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
CHECK_VIOLATION = "23514"
RETRYABLE = frozenset({SERIALIZATION_FAILURE, DEADLOCK_DETECTED})
