"""Statements every resource's repository needs: reads scoped to the principal (tenant,
and app for app tokens) compiled once, inserts and updates returning the row, and rows
turned into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import ColumnElement, Select, Table, and_, func, select

from service.kit import db, errors, sql
from service.kit.auth import Principal

T = TypeVar("T")


class ScopedGet:
    """`SELECT * FROM table WHERE tenant_id = $ AND id = $ [AND app_id = $] [FOR UPDATE]`,
    one prepared statement per shape."""

    def __init__(self, table: Table, *, app_scoped: bool = True) -> None:
        self._app_scoped = app_scoped
        self._statements = {
            (app, lock): sql.Prepared(functools.partial(_get, table, app, lock))
            for app in (False, True)
            for lock in (False, True)
        }

    async def __call__(
        self, conn: db.Conn, principal: Principal, row_id: uuid.UUID, *, for_update: bool = False
    ) -> asyncpg.Record | None:
        app = self._app_scoped and principal.app_id is not None
        return await sql.fetchrow(
            conn, self._statements[app, for_update], params(principal, row_id)
        )


def _get(table: Table, app_scoped: bool, for_update: bool) -> Select[Any]:
    c = table.c
    stmt = select(table).where(c.tenant_id == sql.param("tenant"), c.id == sql.param("id"))
    if app_scoped:
        stmt = stmt.where(c.app_id == sql.param("app"))
    return stmt.with_for_update() if for_update else stmt


def params(principal: Principal, row_id: uuid.UUID) -> dict[str, Any]:
    """Bind values of a scoped statement (`tenant`, `id`, and `app` for app tokens)."""
    values: dict[str, Any] = {"tenant": principal.tenant_id, "id": row_id}
    if principal.app_id is not None:
        values["app"] = principal.app_id
    return values


def readable(table: Table, principal: Principal) -> ColumnElement[bool]:
    """What the principal may read: its tenant, and its app's rows for app tokens."""
    clause = table.c.tenant_id == principal.tenant_id
    if principal.app_id is not None and "app_id" in table.c:
        clause = and_(clause, table.c.app_id == principal.app_id)
    return clause


async def insert(conn: db.Conn, table: Table, values: Mapping[str, Any]) -> asyncpg.Record:
    """INSERT ... RETURNING *, compiled once per set of columns."""
    compiled, bound = sql.insert_returning(table, values)
    row = await sql.fetchrow(conn, compiled, bound)
    assert row is not None, "INSERT ... RETURNING returns its row"
    return row


async def update(
    conn: db.Conn,
    table: Table,
    principal: Principal,
    row_id: uuid.UUID,
    values: Mapping[str, Any],
) -> asyncpg.Record:
    """Update a (locked) row the principal may read: bumps `version`, stamps
    `updated_at` / `updated_by`, returns the row."""
    c = table.c
    stmt = (
        table.update()
        .where(readable(table, principal), c.id == row_id)
        .values(
            **values, version=c.version + 1, updated_at=func.now(), updated_by=principal.subject
        )
        .returning(*table.c)
    )
    return await returning(conn, stmt)


async def returning(conn: db.Conn, stmt: Any) -> asyncpg.Record:
    row = await sql.fetchrow(conn, stmt)
    if row is None:  # pragma: no cover - callers lock the row first
        raise errors.aborted("the row changed concurrently; retry", "CONCURRENT_UPDATE")
    return row


def to_dataclass(cls: type[T], row: Mapping[str, Any]) -> T:
    """A dataclass whose fields are all columns of `row`."""
    return cls(**{name: row[name] for name in _names(cls)})


_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _names(cls: type[Any]) -> tuple[str, ...]:
    names = _NAMES.get(cls)
    if names is None:
        names = _NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names
