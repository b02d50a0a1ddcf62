"""The transactions table: money received (receivable) or paid out (payable)."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Column,
    Date,
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
    *audited(),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint("direction IN ('receivable', 'payable')", name="direction"),
    CheckConstraint("amount > 0", name="amount_positive"),
    # The backstop of the row-locked rule: never more allocated than paid.
    CheckConstraint(
        "allocated_amount >= 0 AND allocated_amount <= amount", name="allocated_amount"
    ),
    CheckConstraint("deleted_at IS NULL OR allocated_amount = 0", name="deleted_unallocated"),
    Index("ix_transactions_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_transactions_tenant_id_value_date_id", "tenant_id", "value_date", "id"),
)
