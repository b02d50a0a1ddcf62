"""Initial schema: invoices, numbering counters, idempotency keys, app role and RLS

Revision ID: 0001
Revises:
Create Date: 2026-11-21 05:45:30.997890
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from service.kit import ddl

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = (
    "invoices",
    "invoice_number_counters",
    "project_sequence_counters",
    "idempotency_keys",
)


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("request_id", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.LargeBinary(), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "method", "request_id", name=op.f("pk_idempotency_keys")
        ),
    )
    op.create_index(
        "ix_idempotency_keys_expires_at", "idempotency_keys", ["expires_at"], unique=False
    )
    op.create_table(
        "invoice_number_counters",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.CheckConstraint("last_value > 0", name=op.f("ck_invoice_number_counters_positive")),
        sa.PrimaryKeyConstraint("tenant_id", "year", name=op.f("pk_invoice_number_counters")),
    )
    op.create_table(
        "invoices",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("app_id", sa.Text(), nullable=True),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="draft", nullable=False),
        sa.Column("number", sa.Text(), nullable=True),
        sa.Column("counterparty_id", sa.UUID(), nullable=True),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("subtotal", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("tax_amount", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("discount_amount", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("total", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column(
            "amount_paid", sa.Numeric(precision=24, scale=4), server_default="0", nullable=False
        ),
        sa.Column("payment_status", sa.Text(), server_default="unpaid", nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "line_items",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "tax_breakdown",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("notes", sa.Text(), server_default="", nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=True),
        sa.Column("contract_id", sa.UUID(), nullable=True),
        sa.Column("po_id", sa.UUID(), nullable=True),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("project_sequence_id", sa.Integer(), nullable=True),
        sa.Column("document_ref", sa.Text(), server_default="", nullable=False),
        sa.Column("tags", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
        sa.Column("source", sa.Text(), server_default="edm", nullable=False),
        sa.Column("source_type", sa.Text(), server_default="api", nullable=False),
        sa.Column("schema_version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "(type = 'customer' AND direction = 'receivable') OR (type = 'supplier' AND direction = 'payable')",
            name=op.f("ck_invoices_type_direction"),
        ),
        sa.CheckConstraint(
            "deleted_at IS NULL OR status = 'draft'", name=op.f("ck_invoices_deleted_draft")
        ),
        sa.CheckConstraint(
            "payment_status IN ('unpaid', 'partially_paid', 'paid')",
            name=op.f("ck_invoices_payment_status"),
        ),
        sa.CheckConstraint(
            "status = 'draft' OR number IS NOT NULL", name=op.f("ck_invoices_issued_numbered")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'issued', 'void')", name=op.f("ck_invoices_status")
        ),
        sa.CheckConstraint("type IN ('customer', 'supplier')", name=op.f("ck_invoices_type")),
        sa.CheckConstraint(
            "amount_paid >= 0 AND amount_paid <= total", name=op.f("ck_invoices_amount_paid")
        ),
        sa.CheckConstraint(
            "due_date IS NULL OR issue_date IS NULL OR due_date >= issue_date",
            name=op.f("ck_invoices_dates"),
        ),
        sa.CheckConstraint(
            "total = subtotal + tax_amount - discount_amount", name=op.f("ck_invoices_total")
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_invoices_version")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoices")),
    )
    op.create_index("ix_invoices_tags", "invoices", ["tags"], unique=False, postgresql_using="gin")
    op.create_index(
        "ix_invoices_tenant_id_created_at_id",
        "invoices",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_invoices_tenant_id_due_date_id",
        "invoices",
        ["tenant_id", "due_date", "id"],
        unique=False,
    )
    op.create_index(
        "ix_invoices_tenant_id_issue_date_id",
        "invoices",
        ["tenant_id", "issue_date", "id"],
        unique=False,
    )
    op.create_index(
        "ix_invoices_tenant_id_total_id", "invoices", ["tenant_id", "total", "id"], unique=False
    )
    op.create_index(
        "ix_invoices_tenant_id_updated_at_id",
        "invoices",
        ["tenant_id", "updated_at", "id"],
        unique=False,
    )
    op.create_index(
        "uq_invoices_customer_number",
        "invoices",
        ["tenant_id", "number"],
        unique=True,
        postgresql_where=sa.text("type = 'customer' AND number IS NOT NULL"),
    )
    op.create_index(
        "uq_invoices_project_sequence",
        "invoices",
        ["tenant_id", "project_id", "type", "project_sequence_id"],
        unique=True,
        postgresql_where=sa.text("project_sequence_id IS NOT NULL"),
    )
    op.create_index(
        "uq_invoices_supplier_number",
        "invoices",
        ["tenant_id", "counterparty_id", "number"],
        unique=True,
        postgresql_where=sa.text("type = 'supplier' AND number IS NOT NULL AND deleted_at IS NULL"),
    )
    op.create_table(
        "project_sequence_counters",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("project_id", sa.UUID(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.CheckConstraint("last_value > 0", name=op.f("ck_project_sequence_counters_positive")),
        sa.PrimaryKeyConstraint(
            "tenant_id", "project_id", "type", name=op.f("pk_project_sequence_counters")
        ),
    )
    role = context.config.attributes.get("app_role", "invoicing_app")
    op.execute(ddl.create_app_role(role))
    op.execute(ddl.grant_schema_usage(role))
    for table in TENANT_TABLES:
        for statement in ddl.tenant_table(table, role):
            op.execute(statement)


def downgrade() -> None:
    op.drop_table("project_sequence_counters")
    op.drop_index(
        "uq_invoices_supplier_number",
        table_name="invoices",
        postgresql_where=sa.text("type = 'supplier' AND number IS NOT NULL AND deleted_at IS NULL"),
    )
    op.drop_index(
        "uq_invoices_project_sequence",
        table_name="invoices",
        postgresql_where=sa.text("project_sequence_id IS NOT NULL"),
    )
    op.drop_index(
        "uq_invoices_customer_number",
        table_name="invoices",
        postgresql_where=sa.text("type = 'customer' AND number IS NOT NULL"),
    )
    op.drop_index("ix_invoices_tenant_id_updated_at_id", table_name="invoices")
    op.drop_index("ix_invoices_tenant_id_total_id", table_name="invoices")
    op.drop_index("ix_invoices_tenant_id_issue_date_id", table_name="invoices")
    op.drop_index("ix_invoices_tenant_id_due_date_id", table_name="invoices")
    op.drop_index("ix_invoices_tenant_id_created_at_id", table_name="invoices")
    op.drop_index("ix_invoices_tags", table_name="invoices", postgresql_using="gin")
    op.drop_table("invoices")
    op.drop_table("invoice_number_counters")
    op.drop_index("ix_idempotency_keys_expires_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
