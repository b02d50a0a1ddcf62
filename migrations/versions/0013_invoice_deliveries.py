"""Invoice deliveries to outbound connections, under RLS

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from service.kit import ddl

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "invoice_deliveries",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("invoice_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=NOW, nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')",
            name=op.f("ck_invoice_deliveries_status"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invoice_deliveries")),
    )
    op.create_index(
        "uq_invoice_deliveries_tenant_id_invoice_id_connection_id",
        "invoice_deliveries",
        ["tenant_id", "invoice_id", "connection_id"],
        unique=True,
    )
    role = context.config.attributes.get("app_role", "invoicing_app")
    for statement in ddl.tenant_table("invoice_deliveries", role):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("invoice_deliveries")
