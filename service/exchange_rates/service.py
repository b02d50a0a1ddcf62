"""Exchange rate use cases. Each runs inside the caller's transaction and never commits.

Other resources use rates only through this module: `get` and `find` (the rate an
allocation applies), `Rate`, and `LISTING` (related-object filters reuse its fields).
"""

from __future__ import annotations

import uuid
from datetime import date

from service.exchange_rates import repository
from service.exchange_rates.queries import EXCHANGE_RATES
from service.exchange_rates.rules import Rate, RateDraft
from service.kit import db, errors, ids, listing
from service.kit.auth import Principal
from service.kit.deps import Deps

LISTING = EXCHANGE_RATES
__all__ = ["LISTING", "Rate", "RateDraft"]


async def create_exchange_rate(conn: db.Conn, principal: Principal, *, draft: RateDraft) -> Rate:
    return await repository.insert(
        conn,
        {
            "tenant_id": principal.tenant_id,
            "id": ids.new_uuid7(),
            "base_currency": draft.base_currency,
            "quote_currency": draft.quote_currency,
            "rate": draft.rate,
            "rate_date": draft.rate_date,
            "source": draft.source,
            "created_by": principal.subject,
        },
    )


async def get_exchange_rate(conn: db.Conn, principal: Principal, *, rate_id: uuid.UUID) -> Rate:
    rate = await repository.get(conn, principal, rate_id)
    if rate is None:
        raise errors.not_found(
            "exchange_rate", ids.encode_id(ids.PREFIXES["exchange_rate"], rate_id)
        )
    return rate


async def list_exchange_rates(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> listing.Page[Rate]:
    page = await listing.list_page(conn, principal, EXCHANGE_RATES, query, deps.cursors)
    return page.map(repository.from_row)


async def find(
    conn: db.Conn, principal: Principal, *, source: str, target: str, on: date
) -> Rate | None:
    """The latest rate between two currencies (either direction) on or before `on`."""
    return await repository.find(conn, principal, source, target, on)
