"""The generic records query (seed 003 `POST /v1/records/query`): a root name, a
where clause and a sort, answered by the root's own list use case, with the same
filter engine, fields, scoping and cursors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from service.allocations import queries
from service.allocations import service as allocations
from service.kit import db, errors, listing
from service.kit.auth import Principal
from service.kit.filtering import compile_where

ROOTS = ("invoice_transactions",)


@dataclass(frozen=True)
class RecordsQuery:
    root: str
    where: Any
    order_field: str = ""
    direction: str = ""
    limit: int = 0
    cursor: str = ""
    show_deleted: bool = False
    include_total: bool = False


def check_root(root: str) -> None:
    if root not in ROOTS:
        raise errors.invalid(
            "root",
            f"unknown root {root[:64]!r}; roots: {', '.join(ROOTS)}",
            reason="UNKNOWN_ROOT" if root else "REQUIRED",
        )


async def query_records(
    conn: db.Conn, principal: Principal, *, query: RecordsQuery, deps: allocations.Deps
) -> allocations.Page:
    check_root(query.root)
    where = query.where
    list_query = listing.Query(
        limit=query.limit,
        cursor=query.cursor,
        order_by=query.order_field,
        direction=query.direction,
        filter_key="json:" + json.dumps(where, sort_keys=True, separators=(",", ":")),
        condition=lambda: compile_where(where, queries.ALLOCATION_FILTER_FIELDS),
        show_deleted=query.show_deleted,
        include_total=query.include_total,
    )
    return await allocations.list_allocations(
        conn, principal, query=list_query, deps=deps, order_field_path="order_by.field"
    )
