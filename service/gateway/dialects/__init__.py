"""The seeds' wire formats at the seeds' paths, declared once, here.

Each seed's path family gets a dialect (`base.Plain` or `base.JsonApi` over a `style.Style`);
every other path speaks the canonical JSON (proto names, full enum names, money as decimal
strings). Resource code knows nothing of this: a dialect only respells what the bindings'
messages already carry. The README's "Seed compatibility" table lists what matches each seed
and what deliberately differs.
"""

from __future__ import annotations

from service.gateway.bindings import Binding
from service.gateway.dialects.base import (
    Dialect,
    JsonApi,
    Plain,
    Relationship,
    Resource,
    Written,
    dialect_for,
)
from service.gateway.dialects.style import Style

__all__ = ["DIALECTS", "Dialect", "JsonApi", "Plain", "Written", "for_binding", "for_path"]

_INVOICE_MONEY = frozenset(
    {
        "subtotal",
        "tax_amount",
        "discount_amount",
        "total",
        "amount",
        "amount_paid",
        "amount_due",
        "quantity",
        "unit_price",
        "tax_rate",
        "taxable_amount",
    }
)

SEED_000 = JsonApi(
    name="seed-000",
    seed="000",
    style=Style(short_enums=True, nulls=True),
    resources=(
        Resource(
            "invoicing.v1.InvoiceProvenance",
            "invoice_workspace_connector",
            (
                Relationship("invoice_id", "invoice", "invoice"),
                Relationship("connection_id", "workspace_connector", "workspace_connector"),
            ),
        ),
    ),
    describes="JSON:API documents as seed 000 shows them (`invoice_workspace_connector`, "
    "`attributes.direction` input | output, `relationships.invoice` and "
    "`relationships.workspace_connector`).",
)

SEED_001 = Plain(
    name="seed-001",
    seed="001",
    style=Style(
        short_enums=True,
        numbers=_INVOICE_MONEY,
        iso_dates=True,
        nulls=True,
        blank_null=frozenset(
            {
                "app_id",
                "account_id",
                "vendor_id",
                "counterparty_id",
                "project_id",
                "contract_id",
                "po_id",
                "document_ref",
                "deleted_by",
                "job_id",
                "flex_transaction_id",
                "parent_id",
            }
        ),
    ),
    field_filters=True,
    describes="Seed 001's spelling: enum values as the seed writes them (`customer`, "
    "`receivable`, `api`, `draft`), money as JSON numbers with their exact digits (numbers "
    "or strings accepted), dates as `YYYY-MM-DD`, unset values (ids, dates) as null; lists "
    "filter by fields as query parameters (`?type=customer&status=draft`).",
)

_INVOICE_TRANSACTION = Resource(
    "invoicing.v1.Allocation",
    "invoice_transaction",
    (
        Relationship("invoice_id", "invoice", "invoice"),
        Relationship("transaction_id", "transaction", "transaction"),
        Relationship("subscription_id", "subscription", "subscription"),
        Relationship("exchange_rate_id", "exchange_rate", "exchange_rate"),
    ),
)

SEED_003 = JsonApi(
    name="seed-003",
    seed="003",
    style=Style(
        short_enums=True,
        numbers=frozenset({"amount", "invoice_amount", "accounting_amount"}),
        nulls=True,
    ),
    resources=(_INVOICE_TRANSACTION,),
    roots=(("invoice_transactions", "invoicing.v1.Allocation"),),
    describes="JSON:API documents as seed 003 shows them (`invoice_transaction` with "
    "`invoice`, `transaction`, `subscription`, `exchange_rate` relationships; `meta.total`, "
    "`meta.count`, `links.next`), amounts as numbers, errors with the seed's codes.",
)

SEED_002 = Plain(
    name="seed-002",
    seed="002",
    style=Style(
        camel=True,
        iso_dates=True,
        nulls=True,
        keep_unset=frozenset({"flex_transaction_id"}),
        int64_numbers=True,
    ),
    describes="Seed 002's camelCase node and field names (`identifiers.isSupplierInvoice`, "
    "`projectSequenceId`); dates as `YYYY-MM-DD`; 64-bit ids (`orderId`) as JSON numbers; "
    "`flexTransactionId` only when set.",
)

SEED_004 = Plain(
    name="seed-004",
    seed="004",
    style=Style(camel=True, millis=True, nulls=True, rename=(("tenant_id", "client"),)),
    bare_list=True,
    describes="Seed 004's camelCase keys (`client`, `hasCredentials`, `lastPolledAt` null "
    "until polled, timestamps with milliseconds); a list is a bare JSON array, the next "
    'page in `Link: <...>; rel="next"`.',
)

# Path prefix -> dialect; the longest prefix wins. Everything else is canonical.
DIALECTS: tuple[tuple[str, Dialect], ...] = (
    ("/v1/invoice-workspace-connectors", SEED_000),
    ("/api/v1/finance/invoices", SEED_001),
    ("/v1/invoices/{id}/document", SEED_002),
    ("/v1/invoice-transactions", SEED_003),
    ("/v1/records/query", SEED_003),
    ("/invoice-connections", SEED_004),
)


def for_binding(binding: Binding) -> Dialect | None:
    return dialect_for(DIALECTS, binding.template)


_LITERAL_PREFIXES = tuple((p, d) for p, d in DIALECTS if "{" not in p)


def for_path(path: str) -> Dialect | None:
    """The dialect of a request path that matched no route (its 404 or 405 is written in
    the seed's error format too); only the literal prefixes can tell."""
    return dialect_for(_LITERAL_PREFIXES, path)
