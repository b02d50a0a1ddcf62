"""What the allocation lists may filter and sort on (allow-lists), including the to-one
related objects of seed 003 (`invoice.total`, `transaction.amount`,
`exchange_rate.rate_date`, `workspace.name`), reached through outer joins. A related
object filters exactly like its own list (the same fields, adapted onto an alias), and
is reached only through its resource's service module."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import and_, func

from service.allocations.models import allocations
from service.exchange_rates import service as exchange_rates
from service.invoices import service as invoices
from service.kit.filtering import (
    FieldType,
    FilterField,
    adapted,
    currency_field,
    enum_values,
    id_field,
)
from service.kit.listing import Join, Resource, by_name
from service.kit.pagination import SortField
from service.transactions import service as transactions
from service.workspaces import service as workspaces

T = FieldType
a = allocations.c
inv = invoices.LISTING.table.alias("rel_invoice")
txn = transactions.LISTING.table.alias("rel_transaction")
fxr = exchange_rates.LISTING.table.alias("rel_exchange_rate")
wks = workspaces.TABLE.alias("rel_workspace")
i, x, f, w = inv.c, txn.c, fxr.c, wks.c
# A workspace never configured has no settings row: it shows the defaults, as the API does.
WORKSPACE_NAME = func.coalesce(w.name, "")
WORKSPACE_CURRENCY = func.coalesce(w.accounting_currency, workspaces.DEFAULT_ACCOUNTING_CURRENCY)

INVOICE_FIELDS = (
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
)
TRANSACTION_FIELDS = (
    "id",
    "direction",
    "amount",
    "currency",
    "value_date",
    "reference",
    "counterparty_id",
)
RATE_FIELDS = ("id", "base_currency", "quote_currency", "rate", "rate_date", "source")

_FIELDS = [
    id_field("id", a.id, "allocation"),
    id_field("invoice_transaction_id", a.id, "allocation"),
    id_field("invoice_id", a.invoice_id, "invoice"),
    id_field("transaction_id", a.transaction_id, "transaction"),
    id_field("exchange_rate_id", a.exchange_rate_id, "exchange_rate"),
    FilterField("subscription_id", a.subscription_id, T.UUID),
    FilterField("subscription.id", a.subscription_id, T.UUID),
    FilterField("amount", a.amount, T.NUMBER),
    currency_field("currency", a.currency),
    FilterField("invoice_amount", a.invoice_amount, T.NUMBER),
    currency_field("invoice_currency", a.invoice_currency),
    FilterField("accounting_amount", a.accounting_amount, T.NUMBER),
    currency_field("accounting_currency", a.accounting_currency),
    FilterField(
        "allocation_type",
        a.allocation_type,
        T.ENUM,
        enum_values(("full", "partial"), "ALLOCATION_TYPE"),
    ),
    FilterField("is_partial", a.allocation_type == "partial", T.BOOL),
    FilterField("composite_fx_rate", a.composite_fx_rate, T.TEXT),
    FilterField(
        "composite_invoice_transaction_summary", a.composite_invoice_transaction_summary, T.TEXT
    ),
    FilterField("created_at", a.created_at, T.TIMESTAMP),
    FilterField("updated_at", a.updated_at, T.TIMESTAMP),
    FilterField("deleted_at", a.deleted_at, T.TIMESTAMP),
    *adapted("invoice", inv, invoices.LISTING.filter_fields, INVOICE_FIELDS),
    FilterField("invoice.grand_total", i.total, T.NUMBER),  # seed 003's name
    *adapted("transaction", txn, transactions.LISTING.filter_fields, TRANSACTION_FIELDS),
    FilterField("transaction.instructed_amount", x.amount, T.NUMBER),  # seed 003's name
    *adapted("exchange_rate", fxr, exchange_rates.LISTING.filter_fields, RATE_FIELDS),
    FilterField("workspace.id", a.tenant_id, T.UUID),
    FilterField("workspace.name", WORKSPACE_NAME, T.TEXT),
    currency_field("workspace.accounting_currency", WORKSPACE_CURRENCY),
]

FILTER_FIELDS: Mapping[str, FilterField] = by_name(_FIELDS)
ALLOCATIONS = Resource(
    key="allocations",
    table=allocations,
    filter_fields=FILTER_FIELDS,
    sort_fields=by_name(
        [
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
            SortField("invoice.grand_total", i.total, T.NUMBER, nullable=True),
            SortField("invoice.number", i.number, T.TEXT, nullable=True),
            SortField("invoice.due_date", i.due_date, T.DATE, nullable=True),
            SortField("transaction.amount", x.amount, T.NUMBER, nullable=True),
            SortField("transaction.instructed_amount", x.amount, T.NUMBER, nullable=True),
            SortField("transaction.value_date", x.value_date, T.DATE, nullable=True),
            SortField("exchange_rate.rate_date", f.rate_date, T.DATE, nullable=True),
            SortField("workspace.name", WORKSPACE_NAME, T.TEXT),
        ]
    ),
    joins=(
        Join(inv, and_(i.tenant_id == a.tenant_id, i.id == a.invoice_id)),
        Join(txn, and_(x.tenant_id == a.tenant_id, x.id == a.transaction_id)),
        Join(fxr, and_(f.tenant_id == a.tenant_id, f.id == a.exchange_rate_id)),
        Join(wks, w.tenant_id == a.tenant_id),
    ),
)
