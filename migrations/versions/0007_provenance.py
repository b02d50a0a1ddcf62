"""Provenance: the invoice/connection junction under RLS, and the legacy source column

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 01:00:00

Expand step of docs/provenance-migration.md: `invoices.source_connection_id` is the legacy
single-source column (as the legacy writer had it), `invoice_provenances` the junction that
replaces it; 0008 backfills one from the other.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects import postgresql

from service.kit import ddl

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DIRECTION = postgresql.ENUM("input", "output", name="direction_enum", create_type=False)


def upgrade() -> None:
    op.add_column("invoices", sa.Column("source_connection_id", sa.UUID(), nullable=True))
    op.create_foreign_key(
        "fk_invoices_source_connection_id_connections",
        "invoices",
        "connections",
        ["tenant_id", "source_connection_id"],
        ["tenant_id", "id"],
    )
    DIRECTION.create(op.get_bind(), checkfirst=False)
    op.create_table(
        "invoice_provenances",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("invoice_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("direction", DIRECTION, nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "connection_id"],
            ["connections.tenant_id", "connections.id"],
            name="fk_invoice_provenances_connection_id_connections",
            onupdate="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"],
            ["invoices.tenant_id", "invoices.id"],
            name="fk_invoice_provenances_invoice_id_invoices",
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_provenances")),
    )
    op.create_index(
        "uq_invoice_provenances_live",
        "invoice_provenances",
        ["tenant_id", "invoice_id", "connection_id", "direction"],
        unique=True,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_invoice_provenances_connection",
        "invoice_provenances",
        ["tenant_id", "connection_id", "direction", "invoice_id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_invoice_provenances_tenant_id_created_at_id",
        "invoice_provenances",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    role = context.config.attributes.get("app_role", "invoicing_app")
    for statement in ddl.tenant_table("invoice_provenances", role):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("invoice_provenances")
    DIRECTION.drop(op.get_bind(), checkfirst=False)
    op.drop_constraint("fk_invoices_source_connection_id_connections", "invoices")
    op.drop_column("invoices", "source_connection_id")
