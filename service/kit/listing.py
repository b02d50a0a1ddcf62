"""One keyset-paginated, filtered, sorted list over a root table and its to-one joins.

Shared by every list of the allocation resources and by the records query: the filter
(AIP-160 text or where-clause JSON, both compiled by `service.filtering`) and the sort
may name related fields (`invoice.total`); the outer joins they need are added, and only
those. The statement is compiled once per shape; every value is a bind parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import asyncpg
from sqlalchemy import ColumnElement, FromClause, Select, Table, func, select
from sqlalchemy.sql.util import find_tables

from service.kit import db, sql
from service.kit.auth import Principal
from service.kit.filtering import FilterField, compile_filter
from service.kit.pagination import (
    CursorCodec,
    SortField,
    keyset_after,
    order_clauses,
    parse_limit,
    parse_order,
    query_fingerprint,
)

SORT_LABEL = "_sort_value"
T = TypeVar("T")
U = TypeVar("U")


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


@dataclass(frozen=True)
class Join:
    """A to-one relation: an aliased table and its ON clause (outer joined)."""

    target: FromClause
    on: ColumnElement[bool]


@dataclass(frozen=True)
class Resource:
    key: str
    table: Table
    filter_fields: Mapping[str, FilterField]
    sort_fields: Mapping[str, SortField]
    default_sort: str = "created_at"
    joins: Sequence[Join] = ()
    soft_delete: bool = True
    app_scoped: bool = True


@dataclass(frozen=True)
class Query:
    """`filter_key` identifies the filter's text (AIP-160 or canonical JSON);
    `condition` compiles it (raising INVALID_ARGUMENT for a bad one)."""

    limit: int = 0
    cursor: str = ""
    order_by: str = ""
    direction: str = ""
    filter_key: str = ""
    condition: Callable[[], ColumnElement[bool] | None] = field(default=lambda: None)
    show_deleted: bool = False
    include_total: bool = False


def query_from_request(request: Any, resource: Resource) -> Query:
    """A List*Request (limit, cursor, order_by, direction, filter, show_deleted,
    include_total) as a list query with its AIP-160 filter."""
    text = request.filter
    return Query(
        limit=request.limit,
        cursor=request.cursor,
        order_by=request.order_by,
        direction=request.direction,
        # The dialect names the key (no text of one is the other's); no filter is "" in
        # every dialect, so a cursor of an unfiltered list stays valid across versions.
        filter_key=f"aip160:{text}" if text else "",
        condition=lambda: compile_filter(text, resource.filter_fields),
        show_deleted=request.show_deleted,
        include_total=request.include_total,
    )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items, the cursor of the next page ("" at the end), and
    the number of matches when it was asked for."""

    items: list[T]
    next_cursor: str
    total: int | None

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        return Page([convert(item) for item in self.items], self.next_cursor, self.total)


def by_name(items: Iterable[N]) -> dict[str, N]:
    """Filter or sort fields indexed by their name."""
    return {item.name: item for item in items}


async def list_page(
    conn: db.Conn,
    principal: Principal,
    resource: Resource,
    query: Query,
    cursors: CursorCodec,
    *,
    order_field_path: str = "order_by",
) -> Page[asyncpg.Record]:
    """One page of `resource` for `query`, as rows (the caller maps them)."""
    limit = parse_limit(query.limit)
    sort, descending = parse_order(
        query.order_by,
        query.direction,
        resource.sort_fields,
        default=resource.default_sort,
        field_path=order_field_path,
    )
    table = resource.table
    app_scoped = resource.app_scoped and principal.app_id is not None
    fingerprint = query_fingerprint(
        resource.key,
        str(principal.tenant_id),
        principal.app_id or "",
        query.filter_key,
        sort.name,
        "desc" if descending else "asc",
        str(query.show_deleted),
    )
    params: dict[str, Any] = {"tenant": principal.tenant_id}
    if app_scoped:
        params["app"] = principal.app_id
    cursor_case = "first"
    if query.cursor:
        last_value, last_id = cursors.decode(query.cursor, query_fingerprint=fingerprint, sort=sort)
        cursor_case = "after-null" if last_value is None else "after"
        params.update(last_id=last_id, last_value=last_value)

    def where(with_cursor: bool) -> list[ColumnElement[bool]]:
        clauses = [table.c.tenant_id == sql.param("tenant")]
        if app_scoped:
            clauses.append(table.c.app_id == sql.param("app"))
        condition = query.condition()
        if condition is not None:
            clauses.append(condition)
        if resource.soft_delete and not query.show_deleted:
            clauses.append(table.c.deleted_at.is_(None))
        if with_cursor:
            last = (
                None if cursor_case == "after-null" else sql.param("last_value", sort.column.type)
            )
            clauses.append(
                keyset_after(
                    sort, descending, table.c.id, last, sql.param("last_id", table.c.id.type)
                )
            )
        return clauses

    shape = (resource.key, app_scoped, query.filter_key, sort.name, descending, query.show_deleted)

    def build_page() -> Select[Any]:
        clauses = where(cursor_case != "first")
        order = order_clauses(sort, descending, table.c.id)
        stmt = select(table, sort.column.label(SORT_LABEL))
        return (
            stmt.select_from(_joined(resource, [*clauses, *order]))
            .where(*clauses)
            .order_by(*order)
            .limit(sql.param("limit"))
        )

    compiled = sql.cached(("list", *shape, cursor_case), build_page)
    rows = list(await sql.fetch(conn, compiled, {**params, "limit": limit + 1}))
    items, more = rows[:limit], len(rows) > limit
    next_cursor = ""
    if more:
        last_row = items[-1]
        next_cursor = cursors.encode(
            query_fingerprint=fingerprint,
            sort=sort,
            last_value=last_row[SORT_LABEL],
            last_id=last_row["id"],
        )
    total = None
    if query.include_total:

        def build_count() -> Select[Any]:
            clauses = where(False)
            joined = _joined(resource, clauses)
            return select(func.count()).select_from(joined).where(*clauses)

        counted = sql.cached(("count", *shape), build_count)
        scope = {k: v for k, v in params.items() if k in ("tenant", "app")}
        total = int(await sql.fetchval(conn, counted, scope))
    return Page(items=items, next_cursor=next_cursor, total=total)


def _joined(resource: Resource, clauses: Sequence[ColumnElement[Any]]) -> FromClause:
    """The root outer-joined to the relations the clauses reference (and no others)."""
    used: set[Any] = set()
    for clause in clauses:
        used.update(find_tables(clause, check_columns=True, include_aliases=True))
    joined: FromClause = resource.table
    for join in resource.joins:
        if join.target in used:
            joined = joined.outerjoin(join.target, join.on)
    return joined
