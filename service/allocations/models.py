"""Allocation tables (SQLAlchemy Core): transactions, exchange rates, allocations and
workspace settings. `tenant_id` leads every key; foreign keys carry it too, so a row
can only ever point at a row of its own tenant."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from service.kit.db import metadata

MONEY = Numeric(24, 4)
RATE = Numeric(30, 10)
NOW = text("now()")

transactions = Table(
    "transactions",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("app_id", Text),
    Column("direction", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("allocated_amount", MONEY, nullable=False, server_default="0"),
    Column("value_date", Date, nullable=False),
    Column("reference", Text, nullable=False, server_default=""),
    Column("counterparty_id", UUID(as_uuid=True)),
    Column("subscription_id", UUID(as_uuid=True)),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("created_by", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Column("deleted_by", Text),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint("direction IN ('receivable', 'payable')", name="direction"),
    CheckConstraint("amount > 0", name="amount_positive"),
    # The backstop of the row-locked rule: never more allocated than paid.
    CheckConstraint(
        "allocated_amount >= 0 AND allocated_amount <= amount", name="allocated_amount"
    ),
    CheckConstraint("deleted_at IS NULL OR allocated_amount = 0", name="deleted_unallocated"),
    CheckConstraint("version > 0", name="version"),
    Index("ix_transactions_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_transactions_tenant_id_value_date_id", "tenant_id", "value_date", "id"),
)

exchange_rates = Table(
    "exchange_rates",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("base_currency", CHAR(3), nullable=False),
    Column("quote_currency", CHAR(3), nullable=False),
    Column("rate", RATE, nullable=False),
    Column("rate_date", Date, nullable=False),
    Column("source", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("created_by", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "base_currency", "quote_currency", "rate_date", "source"),
    CheckConstraint("rate > 0", name="rate_positive"),
    CheckConstraint("base_currency <> quote_currency", name="distinct_currencies"),
    Index("ix_exchange_rates_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
)

allocations = Table(
    "allocations",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("app_id", Text),
    Column("invoice_id", UUID(as_uuid=True), nullable=False),
    Column("transaction_id", UUID(as_uuid=True), nullable=False),
    Column("exchange_rate_id", UUID(as_uuid=True)),
    Column("accounting_exchange_rate_id", UUID(as_uuid=True)),
    Column("subscription_id", UUID(as_uuid=True)),
    Column("amount", MONEY, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("invoice_amount", MONEY, nullable=False),
    Column("invoice_currency", CHAR(3), nullable=False),
    Column("accounting_amount", MONEY, nullable=False),
    Column("accounting_currency", CHAR(3), nullable=False),
    Column("allocation_type", Text, nullable=False),
    Column("composite_fx_rate", Text),
    Column("composite_invoice_transaction_summary", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("created_by", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Column("deleted_by", Text),
    PrimaryKeyConstraint("tenant_id", "id"),
    ForeignKeyConstraint(
        ["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"], name="invoice"
    ),
    ForeignKeyConstraint(
        ["tenant_id", "transaction_id"],
        ["transactions.tenant_id", "transactions.id"],
        name="transaction",
    ),
    ForeignKeyConstraint(
        ["tenant_id", "exchange_rate_id"],
        ["exchange_rates.tenant_id", "exchange_rates.id"],
        name="exchange_rate",
    ),
    ForeignKeyConstraint(
        ["tenant_id", "accounting_exchange_rate_id"],
        ["exchange_rates.tenant_id", "exchange_rates.id"],
        name="accounting_exchange_rate",
    ),
    CheckConstraint("allocation_type IN ('full', 'partial')", name="allocation_type"),
    CheckConstraint(
        "amount > 0 AND invoice_amount > 0 AND accounting_amount >= 0", name="amounts_positive"
    ),
    CheckConstraint(
        "currency <> invoice_currency OR (amount = invoice_amount AND exchange_rate_id IS NULL)",
        name="same_currency_exact",
    ),
    CheckConstraint("version > 0", name="version"),
    Index("ix_allocations_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_allocations_tenant_id_invoice_id", "tenant_id", "invoice_id"),
    Index("ix_allocations_tenant_id_transaction_id", "tenant_id", "transaction_id"),
)

workspace_settings = Table(
    "workspace_settings",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("accounting_currency", CHAR(3), nullable=False, server_default="EUR"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    Column("updated_by", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id"),
    CheckConstraint("version > 0", name="version"),
)
