"""The workspace_settings table: one row per tenant once configured."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    CheckConstraint,
    Column,
    DateTime,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from service.kit.db import metadata

workspace_settings = Table(
    "workspace_settings",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False, server_default=""),
    Column("accounting_currency", CHAR(3), nullable=False, server_default="EUR"),
    # "My Company" (seed 002): the counterparty that is the tenant's own company.
    Column("company_id", UUID(as_uuid=True)),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_by", Text, nullable=False),
    PrimaryKeyConstraint("tenant_id"),
    CheckConstraint("version > 0", name="version"),
)
