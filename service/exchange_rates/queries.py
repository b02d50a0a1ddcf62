"""What the exchange rate list may filter and sort on (allow-lists)."""

from __future__ import annotations

from service.exchange_rates.models import exchange_rates
from service.kit.filtering import FieldType, FilterField, currency_field, id_field
from service.kit.listing import Resource, by_name
from service.kit.pagination import SortField

T = FieldType
r = exchange_rates.c

EXCHANGE_RATES = Resource(
    key="exchange_rates",
    table=exchange_rates,
    filter_fields=by_name(
        [
            id_field("id", r.id, "exchange_rate"),
            currency_field("base_currency", r.base_currency),
            currency_field("quote_currency", r.quote_currency),
            FilterField("rate", r.rate, T.NUMBER),
            FilterField("rate_date", r.rate_date, T.DATE),
            FilterField("source", r.source, T.TEXT),
            FilterField("created_at", r.created_at, T.TIMESTAMP),
        ]
    ),
    sort_fields=by_name(
        [
            SortField("created_at", r.created_at, T.TIMESTAMP),
            SortField("rate_date", r.rate_date, T.DATE),
            SortField("base_currency", r.base_currency, T.TEXT),
            SortField("quote_currency", r.quote_currency, T.TEXT),
            SortField("source", r.source, T.TEXT),
        ]
    ),
    soft_delete=False,
    app_scoped=False,
)
