"""What the transaction list may filter and sort on (allow-lists)."""

from __future__ import annotations

from service.kit.filtering import (
    FieldType,
    FilterField,
    currency_field,
    enum_values,
    id_field,
)
from service.kit.listing import Resource, by_name
from service.kit.pagination import SortField
from service.transactions.models import transactions

T = FieldType
t = transactions.c
DIRECTIONS = enum_values(("receivable", "payable"), "TRANSACTION_DIRECTION")

TRANSACTIONS = Resource(
    key="transactions",
    table=transactions,
    filter_fields=by_name(
        [
            id_field("id", t.id, "transaction"),
            FilterField("direction", t.direction, T.ENUM, DIRECTIONS),
            currency_field("currency", t.currency),
            FilterField("amount", t.amount, T.NUMBER),
            FilterField("allocated_amount", t.allocated_amount, T.NUMBER),
            FilterField("unallocated_amount", t.amount - t.allocated_amount, T.NUMBER),
            FilterField("value_date", t.value_date, T.DATE),
            FilterField("reference", t.reference, T.TEXT),
            FilterField("counterparty_id", t.counterparty_id, T.UUID),
            FilterField("subscription_id", t.subscription_id, T.UUID),
            FilterField("created_at", t.created_at, T.TIMESTAMP),
            FilterField("updated_at", t.updated_at, T.TIMESTAMP),
            FilterField("deleted_at", t.deleted_at, T.TIMESTAMP),
        ]
    ),
    sort_fields=by_name(
        [
            SortField("created_at", t.created_at, T.TIMESTAMP),
            SortField("updated_at", t.updated_at, T.TIMESTAMP),
            SortField("value_date", t.value_date, T.DATE),
            SortField("amount", t.amount, T.NUMBER),
            SortField("currency", t.currency, T.TEXT),
            SortField("unallocated_amount", t.amount - t.allocated_amount, T.NUMBER),
        ]
    ),
)
