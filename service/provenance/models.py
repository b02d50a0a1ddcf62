"""The provenance junction (seed 000 "invoice workspace connectors"): which connection an
invoice came in through (input) or was routed out through (output)."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ENUM, UUID

from service.kit.db import metadata

# The native enum, named as seed 000 names it (values: rules.DIRECTIONS).
DIRECTION = ENUM("input", "output", name="direction_enum", create_type=False)

invoice_provenances = Table(
    "invoice_provenances",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("invoice_id", UUID(as_uuid=True), nullable=False),
    Column("connection_id", UUID(as_uuid=True), nullable=False),
    Column("direction", DIRECTION, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    # Null until the first update (seed 000); only a soft delete updates a row.
    Column("updated_at", DateTime(timezone=True)),
    Column("deleted_at", DateTime(timezone=True)),
    Column("created_by", Text, nullable=False),
    Column("deleted_by", Text),
    PrimaryKeyConstraint("tenant_id", "id"),
    # The tenant leads both keys: a row can only join an invoice and a connection of its own
    # tenant.
    ForeignKeyConstraint(
        ["tenant_id", "invoice_id"],
        ["invoices.tenant_id", "invoices.id"],
        onupdate="CASCADE",
        name="fk_invoice_provenances_invoice_id_invoices",
    ),
    ForeignKeyConstraint(
        ["tenant_id", "connection_id"],
        ["connections.tenant_id", "connections.id"],
        onupdate="CASCADE",
        name="fk_invoice_provenances_connection_id_connections",
    ),
    # At most one live row per (invoice, connection, direction), race-safe.
    Index(
        "uq_invoice_provenances_live",
        "tenant_id",
        "invoice_id",
        "connection_id",
        "direction",
        unique=True,
        postgresql_where=text("deleted_at IS NULL"),
    ),
    # ListInvoices' provenance filters: the invoices of one connection, one direction.
    Index(
        "ix_invoice_provenances_connection",
        "tenant_id",
        "connection_id",
        "direction",
        "invoice_id",
        postgresql_where=text("deleted_at IS NULL"),
    ),
    Index("ix_invoice_provenances_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
)
