"""The transactions table: money received (receivable) or paid out (payable)."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from service.kit.db import metadata

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
