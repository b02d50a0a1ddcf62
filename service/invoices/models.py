"""Invoice tables (SQLAlchemy Core). `tenant_id` leads every key."""

from __future__ import annotations

from sqlalchemy import (
    CHAR,
    BigInteger,
    Boolean,
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
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from service.kit.db import audited, metadata

MONEY = Numeric(24, 4)
NOW = text("now()")

invoices = Table(
    "invoices",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("app_id", Text),
    Column("type", Text, nullable=False),
    Column("direction", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="draft"),
    Column("number", Text),
    Column("counterparty_id", UUID(as_uuid=True)),
    Column("issue_date", Date),
    Column("due_date", Date),
    Column("currency", CHAR(3), nullable=False),
    Column("subtotal", MONEY, nullable=False),
    Column("tax_amount", MONEY, nullable=False),
    Column("discount_amount", MONEY, nullable=False),
    Column("total", MONEY, nullable=False),
    Column("amount_paid", MONEY, nullable=False, server_default="0"),
    Column("payment_status", Text, nullable=False, server_default="unpaid"),
    Column("paid_at", DateTime(timezone=True)),
    Column("line_items", JSONB, nullable=False, server_default="[]"),
    Column("tax_breakdown", JSONB, nullable=False, server_default="[]"),
    Column("notes", Text, nullable=False, server_default=""),
    Column("project_id", UUID(as_uuid=True)),
    Column("contract_id", UUID(as_uuid=True)),
    Column("po_id", UUID(as_uuid=True)),
    Column("order_id", BigInteger),
    Column("project_sequence_id", Integer),
    Column("document_ref", Text, nullable=False, server_default=""),
    Column("tags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("source", Text, nullable=False, server_default="edm"),
    Column("source_type", Text, nullable=False, server_default="api"),
    Column("schema_version", Integer, nullable=False, server_default="1"),
    Column("issued_at", DateTime(timezone=True)),
    Column("voided_at", DateTime(timezone=True)),
    Column("void_reason", Text, nullable=False, server_default=""),
    # Legacy single-source column (seed 000's `source_workspace_connector_pk`): the
    # connection an invoice came in through, as the legacy writer recorded it. Provenance
    # rows replace it (migration 0008 backfills them); docs/provenance-migration.md says
    # how it is dropped.
    Column("source_connection_id", UUID(as_uuid=True)),
    # Ingested invoices (a provider's document): where from, the document's own figures,
    # the supplier as named and how it was matched, and why a person should look.
    Column("external_provider", Text),
    Column("external_id", Text),
    Column("external_updated_at", DateTime(timezone=True)),
    Column("external_totals", JSONB),
    Column("supplier_name", Text),
    Column("supplier_siret", Text),
    Column("supplier_siren", Text),
    Column("match_status", Text),
    Column("match_reason", Text),
    Column("review_reason", Text),
    # Seed 002: identifiers, attachments, and the aggregation of children into a parent.
    Column("job_id", Text),
    Column("flex_transaction_id", Text),
    Column("attachments", JSONB, nullable=False, server_default="[]"),
    Column("parent_id", UUID(as_uuid=True)),
    Column("is_parent", Boolean, nullable=False, server_default=text("false")),
    *audited(),
    PrimaryKeyConstraint("tenant_id", "id"),
    ForeignKeyConstraint(
        ["tenant_id", "source_connection_id"],
        ["connections.tenant_id", "connections.id"],
        name="fk_invoices_source_connection_id_connections",
    ),
    CheckConstraint("type IN ('customer', 'supplier')", name="type"),
    CheckConstraint(
        "(type = 'customer' AND direction = 'receivable')"
        " OR (type = 'supplier' AND direction = 'payable')",
        name="type_direction",
    ),
    CheckConstraint("status IN ('draft', 'issued', 'void')", name="status"),
    CheckConstraint(
        "payment_status IN ('unpaid', 'partially_paid', 'paid')", name="payment_status"
    ),
    CheckConstraint("total = subtotal + tax_amount - discount_amount", name="total"),
    CheckConstraint("amount_paid >= 0 AND amount_paid <= total", name="amount_paid"),
    CheckConstraint("status = 'draft' OR number IS NOT NULL", name="issued_numbered"),
    CheckConstraint("deleted_at IS NULL OR status = 'draft'", name="deleted_draft"),
    CheckConstraint(
        "due_date IS NULL OR issue_date IS NULL OR due_date >= issue_date", name="dates"
    ),
    CheckConstraint("match_status IN ('matched', 'unmatched', 'ambiguous')", name="match_status"),
    CheckConstraint("(external_id IS NULL) = (external_provider IS NULL)", name="external"),
    CheckConstraint("job_id IS NULL OR type = 'supplier'", name="job_supplier"),
    CheckConstraint("NOT (is_parent AND parent_id IS NOT NULL)", name="one_level"),
    ForeignKeyConstraint(
        ["tenant_id", "parent_id"],
        ["invoices.tenant_id", "invoices.id"],
        name="fk_invoices_parent_id_invoices",
    ),
    Index(
        "uq_invoices_customer_number",
        "tenant_id",
        "number",
        unique=True,
        postgresql_where=text("type = 'customer' AND number IS NOT NULL"),
    ),
    Index(
        "uq_invoices_supplier_number",
        "tenant_id",
        "counterparty_id",
        "number",
        unique=True,
        postgresql_where=text("type = 'supplier' AND number IS NOT NULL AND deleted_at IS NULL"),
    ),
    Index(
        "uq_invoices_project_sequence",
        "tenant_id",
        "project_id",
        "type",
        "project_sequence_id",
        unique=True,
        postgresql_where=text("project_sequence_id IS NOT NULL"),
    ),
    Index("ix_invoices_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    Index("ix_invoices_tenant_id_updated_at_id", "tenant_id", "updated_at", "id"),
    Index("ix_invoices_tenant_id_issue_date_id", "tenant_id", "issue_date", "id"),
    Index("ix_invoices_tenant_id_due_date_id", "tenant_id", "due_date", "id"),
    Index("ix_invoices_tenant_id_total_id", "tenant_id", "total", "id"),
    Index("ix_invoices_tags", "tags", postgresql_using="gin"),
    # Idempotent ingestion: one invoice per (tenant, provider, document id).
    Index(
        "uq_invoices_external",
        "tenant_id",
        "external_provider",
        "external_id",
        unique=True,
        postgresql_where=text("external_id IS NOT NULL"),
    ),
    Index(
        "ix_invoices_tenant_id_parent_id",
        "tenant_id",
        "parent_id",
        postgresql_where=text("parent_id IS NOT NULL"),
    ),
    # A contractor created or corrected later finds the unmatched invoices of its SIREN.
    Index(
        "ix_invoices_unmatched_siren",
        "tenant_id",
        "supplier_siren",
        postgresql_where=text("match_status IN ('unmatched', 'ambiguous')"),
    ),
)

invoice_number_counters = Table(
    "invoice_number_counters",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("year", Integer, nullable=False),
    Column("last_value", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "year"),
    CheckConstraint("last_value > 0", name="positive"),
)

project_sequence_counters = Table(
    "project_sequence_counters",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("project_id", UUID(as_uuid=True), nullable=False),
    Column("type", Text, nullable=False),
    Column("last_value", Integer, nullable=False),
    PrimaryKeyConstraint("tenant_id", "project_id", "type"),
    CheckConstraint("last_value > 0", name="positive"),
)

# Issued invoices sent to the tenant's outbound connections (provider `webhook`): one row per
# (invoice, connection), its attempts and outcome.
invoice_deliveries = Table(
    "invoice_deliveries",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("invoice_id", UUID(as_uuid=True), nullable=False),
    Column("connection_id", UUID(as_uuid=True), nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), server_default=NOW),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=NOW),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    Index(
        "uq_invoice_deliveries_tenant_id_invoice_id_connection_id",
        "tenant_id",
        "invoice_id",
        "connection_id",
        unique=True,
    ),
)
