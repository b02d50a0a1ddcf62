"""The allocations table (seed 003 invoice transactions). `tenant_id` leads every key;
foreign keys carry it too, so an allocation can only point at rows of its own tenant."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from service.kit.db import audited, metadata

MONEY = Numeric(24, 4)
NOW = text("now()")

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
    *audited(),
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
    Index("ix_allocations_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_allocations_tenant_id_invoice_id", "tenant_id", "invoice_id"),
    Index("ix_allocations_tenant_id_transaction_id", "tenant_id", "transaction_id"),
)
