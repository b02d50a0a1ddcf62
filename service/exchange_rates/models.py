"""The exchange_rates table: `1 base = rate quote` on a date, from a source."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Numeric,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from service.kit.db import metadata

RATE = Numeric(30, 10)

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
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("created_by", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "base_currency", "quote_currency", "rate_date", "source"),
    CheckConstraint("rate > 0", name="rate_positive"),
    CheckConstraint("base_currency <> quote_currency", name="distinct_currencies"),
    Index("ix_exchange_rates_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
)
