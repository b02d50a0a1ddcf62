"""What the allocation lists may filter and sort on (allow-lists), including the to-one
related objects of seed 003 (`invoice.total`, `transaction.amount`,
`exchange_rate.rate_date`, `workspace.name`), reached through outer joins."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, func

from service.allocations import rules
from service.allocations.models import allocations, exchange_rates, transactions, workspace_settings
from service.invoices.models import invoices
from service.invoices.queries import FILTER_FIELDS as INVOICE_FIELDS
from service.kit import ids
from service.kit.filtering import FieldType, FilterField, adapted, enum_values
from service.kit.listing import Join, Resource
from service.kit.money import CURRENCY_EXPONENTS
from service.kit.pagination import SortField

T = FieldType
CURRENCIES = {code: code for code in CURRENCY_EXPONENTS} | {
    code.lower(): code for code in CURRENCY_EXPONENTS
}


def _decoder(prefix: str) -> Any:
    def decode(text: str) -> uuid.UUID:
        return ids.decode_id(text, ids.PREFIXES[prefix], "filter")

    return decode


_enum = enum_values


def _index(fields: Iterable[FilterField]) -> dict[str, FilterField]:
    return {f.name: f for f in fields}


def _sorts(*fields: SortField) -> dict[str, SortField]:
    return {s.name: s for s in fields}


def _id(name: str, column: ColumnElement[Any], prefix: str) -> FilterField:
    return FilterField(name, column, T.UUID, id_decoder=_decoder(prefix))


def _prefixed(prefix: str, fields: Iterable[FilterField]) -> list[FilterField]:
    return [
        FilterField(f"{prefix}.{f.name}", f.column, f.type, f.enum_values, f.id_decoder)
        for f in fields
    ]


DIRECTIONS = _enum(("receivable", "payable"), "TRANSACTION_DIRECTION")

# ---- transactions ----------------------------------------------------------------------

t = transactions.c
_TRANSACTION_FIELDS = [
    _id("id", t.id, "transaction"),
    FilterField("direction", t.direction, T.ENUM, DIRECTIONS),
    FilterField("currency", t.currency, T.ENUM, CURRENCIES),
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
TRANSACTIONS = Resource(
    key="transactions",
    table=transactions,
    filter_fields=_index(_TRANSACTION_FIELDS),
    sort_fields=_sorts(
        SortField("created_at", t.created_at, T.TIMESTAMP),
        SortField("updated_at", t.updated_at, T.TIMESTAMP),
        SortField("value_date", t.value_date, T.DATE),
        SortField("amount", t.amount, T.NUMBER),
        SortField("currency", t.currency, T.TEXT),
        SortField("unallocated_amount", t.amount - t.allocated_amount, T.NUMBER),
    ),
)

# ---- exchange rates --------------------------------------------------------------------

r = exchange_rates.c
_RATE_FIELDS = [
    _id("id", r.id, "exchange_rate"),
    FilterField("base_currency", r.base_currency, T.ENUM, CURRENCIES),
    FilterField("quote_currency", r.quote_currency, T.ENUM, CURRENCIES),
    FilterField("rate", r.rate, T.NUMBER),
    FilterField("rate_date", r.rate_date, T.DATE),
    FilterField("source", r.source, T.TEXT),
    FilterField("created_at", r.created_at, T.TIMESTAMP),
]
EXCHANGE_RATES = Resource(
    key="exchange_rates",
    table=exchange_rates,
    filter_fields=_index(_RATE_FIELDS),
    sort_fields=_sorts(
        SortField("created_at", r.created_at, T.TIMESTAMP),
        SortField("rate_date", r.rate_date, T.DATE),
        SortField("base_currency", r.base_currency, T.TEXT),
        SortField("quote_currency", r.quote_currency, T.TEXT),
        SortField("source", r.source, T.TEXT),
    ),
    soft_delete=False,
    app_scoped=False,
)

# ---- allocations (seed 003 invoice transactions) ---------------------------------------

a = allocations.c
inv = invoices.alias("rel_invoice")
txn = transactions.alias("rel_transaction")
fxr = exchange_rates.alias("rel_exchange_rate")
wks = workspace_settings.alias("rel_workspace")
i, x, f, w = inv.c, txn.c, fxr.c, wks.c
# A workspace never configured has no settings row: its name is "" as the API shows it.
WORKSPACE_NAME = func.coalesce(w.name, "")

_ALLOCATION_FIELDS = [
    _id("id", a.id, "allocation"),
    _id("invoice_transaction_id", a.id, "allocation"),
    _id("invoice_id", a.invoice_id, "invoice"),
    _id("transaction_id", a.transaction_id, "transaction"),
    _id("exchange_rate_id", a.exchange_rate_id, "exchange_rate"),
    FilterField("subscription_id", a.subscription_id, T.UUID),
    FilterField("subscription.id", a.subscription_id, T.UUID),
    FilterField("amount", a.amount, T.NUMBER),
    FilterField("currency", a.currency, T.ENUM, CURRENCIES),
    FilterField("invoice_amount", a.invoice_amount, T.NUMBER),
    FilterField("invoice_currency", a.invoice_currency, T.ENUM, CURRENCIES),
    FilterField("accounting_amount", a.accounting_amount, T.NUMBER),
    FilterField("accounting_currency", a.accounting_currency, T.ENUM, CURRENCIES),
    FilterField(
        "allocation_type",
        a.allocation_type,
        T.ENUM,
        _enum(("full", "partial"), "ALLOCATION_TYPE"),
    ),
    FilterField("is_partial", a.allocation_type == "partial", T.BOOL),
    FilterField("composite_fx_rate", a.composite_fx_rate, T.TEXT),
    FilterField(
        "composite_invoice_transaction_summary", a.composite_invoice_transaction_summary, T.TEXT
    ),
    FilterField("created_at", a.created_at, T.TIMESTAMP),
    FilterField("updated_at", a.updated_at, T.TIMESTAMP),
    FilterField("deleted_at", a.deleted_at, T.TIMESTAMP),
    # The invoice relation filters like ListInvoices itself (same fields, on the alias).
    *adapted(
        "invoice",
        inv,
        INVOICE_FIELDS,
        (
            "id",
            "number",
            "type",
            "direction",
            "status",
            "payment_status",
            "currency",
            "total",
            "amount_paid",
            "amount_due",
            "issue_date",
            "due_date",
            "counterparty_id",
        ),
    ),
    FilterField("invoice.grand_total", i.total, T.NUMBER),
    *_prefixed(
        "transaction",
        [
            _id("id", x.id, "transaction"),
            FilterField("direction", x.direction, T.ENUM, DIRECTIONS),
            FilterField("amount", x.amount, T.NUMBER),
            FilterField("instructed_amount", x.amount, T.NUMBER),
            FilterField("currency", x.currency, T.ENUM, CURRENCIES),
            FilterField("value_date", x.value_date, T.DATE),
            FilterField("reference", x.reference, T.TEXT),
            FilterField("counterparty_id", x.counterparty_id, T.UUID),
        ],
    ),
    *_prefixed(
        "exchange_rate",
        [
            _id("id", f.id, "exchange_rate"),
            FilterField("base_currency", f.base_currency, T.ENUM, CURRENCIES),
            FilterField("quote_currency", f.quote_currency, T.ENUM, CURRENCIES),
            FilterField("rate", f.rate, T.NUMBER),
            FilterField("rate_date", f.rate_date, T.DATE),
            FilterField("source", f.source, T.TEXT),
        ],
    ),
    *_prefixed(
        "workspace",
        [
            FilterField("id", a.tenant_id, T.UUID),
            FilterField("name", WORKSPACE_NAME, T.TEXT),
            # A workspace never configured has no settings row: the default applies.
            FilterField(
                "accounting_currency",
                func.coalesce(w.accounting_currency, rules.DEFAULT_ACCOUNTING_CURRENCY),
                T.ENUM,
                CURRENCIES,
            ),
        ],
    ),
]

ALLOCATION_FILTER_FIELDS: Mapping[str, FilterField] = _index(_ALLOCATION_FIELDS)
ALLOCATIONS = Resource(
    key="allocations",
    table=allocations,
    filter_fields=ALLOCATION_FILTER_FIELDS,
    sort_fields=_sorts(
        SortField("created_at", a.created_at, T.TIMESTAMP),
        SortField("updated_at", a.updated_at, T.TIMESTAMP),
        SortField("deleted_at", a.deleted_at, T.TIMESTAMP, nullable=True),
        SortField("amount", a.amount, T.NUMBER),
        SortField("currency", a.currency, T.TEXT),
        SortField("accounting_amount", a.accounting_amount, T.NUMBER),
        SortField("accounting_currency", a.accounting_currency, T.TEXT),
        SortField("allocation_type", a.allocation_type, T.TEXT),
        SortField("composite_fx_rate", a.composite_fx_rate, T.TEXT, nullable=True),
        SortField(
            "composite_invoice_transaction_summary",
            a.composite_invoice_transaction_summary,
            T.TEXT,
        ),
        SortField("invoice_transaction_id", a.id, T.UUID),
        SortField("invoice.total", i.total, T.NUMBER, nullable=True),
        SortField("invoice.number", i.number, T.TEXT, nullable=True),
        SortField("invoice.due_date", i.due_date, T.DATE, nullable=True),
        SortField("transaction.amount", x.amount, T.NUMBER, nullable=True),
        SortField("transaction.value_date", x.value_date, T.DATE, nullable=True),
        SortField("exchange_rate.rate_date", f.rate_date, T.DATE, nullable=True),
        SortField("workspace.name", WORKSPACE_NAME, T.TEXT),
    ),
    joins=(
        Join(inv, and_(i.tenant_id == a.tenant_id, i.id == a.invoice_id)),
        Join(txn, and_(x.tenant_id == a.tenant_id, x.id == a.transaction_id)),
        Join(fxr, and_(f.tenant_id == a.tenant_id, f.id == a.exchange_rate_id)),
        Join(wks, w.tenant_id == a.tenant_id),
    ),
)
