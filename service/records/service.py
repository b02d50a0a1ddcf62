"""The generic records query (seed 003 `POST /v1/records/query`): a root name, a where
clause and a sort, answered by the root's own list use case, with the same filter
engine, fields, scoping and cursors. Roots are declared by the modules that own them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.edge.modules import RecordRoot
from service.kit import db, errors, listing
from service.kit.auth import Principal
from service.kit.deps import Deps
from service.kit.filtering import compile_where


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


def find_root(roots: Mapping[str, RecordRoot], name: str) -> RecordRoot:
    root = roots.get(name)
    if root is None:
        raise errors.invalid(
            "root",
            f"unknown root {name[:64]!r}; roots: {', '.join(sorted(roots))}",
            reason="UNKNOWN_ROOT" if name else "REQUIRED",
        )
    return root


async def query_records(
    conn: db.Conn, principal: Principal, *, root: RecordRoot, query: RecordsQuery, deps: Deps
) -> listing.Page[Any]:
    where = query.where
    list_query = listing.Query(
        limit=query.limit,
        cursor=query.cursor,
        order_by=query.order_field,
        direction=query.direction,
        filter_key="json:" + json.dumps(where, sort_keys=True, separators=(",", ":")),
        condition=lambda: compile_where(where, root.fields),
        show_deleted=query.show_deleted,
        include_total=query.include_total,
    )
    return await root.list(
        conn, principal, query=list_query, deps=deps, order_field_path="order_by.field"
    )
