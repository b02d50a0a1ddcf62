"""Translate between protobuf messages and exchange rates (the edge only)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from invoicing.v1 import allocations_pb2 as pb

from service.edge import pbconv
from service.exchange_rates import service
from service.exchange_rates.rules import MAX_RATE, RATE_PLACES
from service.kit import errors
from service.kit.money import format_decimal, parse_decimal


def rate_draft(message: pb.ExchangeRate) -> service.RateDraft:
    path = "exchange_rate"
    base = pbconv.currency(message.base_currency, f"{path}.base_currency")
    quote = pbconv.currency(message.quote_currency, f"{path}.quote_currency")
    if base == quote:
        raise errors.invalid(
            f"{path}.quote_currency", "must differ from base_currency", reason="SAME_CURRENCY"
        )
    rate = parse_decimal(
        message.rate,
        f"{path}.rate",
        max_places=RATE_PLACES,
        minimum=Decimal(0),
        maximum=MAX_RATE,
        exclusive_minimum=True,
    )
    rate_date = pbconv.date_from_pb(message.rate_date, f"{path}.rate_date")
    if rate_date is None:
        raise errors.invalid(f"{path}.rate_date", "is required", reason="REQUIRED")
    source = pbconv.text(message.source.strip(), f"{path}.source", max_length=64) or "manual"
    return service.RateDraft(base, quote, rate, rate_date, source)


def rate_to_pb(r: service.Rate, tenant_id: uuid.UUID) -> pb.ExchangeRate:
    return pb.ExchangeRate(
        id=pbconv.public_id("exchange_rate", r.id),
        tenant_id=str(tenant_id),
        base_currency=r.base_currency,
        quote_currency=r.quote_currency,
        rate=format_decimal(r.rate),
        rate_date=pbconv.pb_date(r.rate_date),
        source=r.source,
        created_at=pbconv.ts(r.created_at),
        created_by=r.created_by,
    )
