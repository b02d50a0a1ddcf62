"""Seed 002: job and Flex ids, attachments, aggregation parents; My Company

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("job_id", sa.Text(), nullable=True))
    op.add_column("invoices", sa.Column("flex_transaction_id", sa.Text(), nullable=True))
    op.add_column(
        "invoices",
        sa.Column(
            "attachments",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.add_column("invoices", sa.Column("parent_id", sa.UUID(), nullable=True))
    op.add_column(
        "invoices",
        sa.Column("is_parent", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_invoices_job_supplier"), "invoices", "job_id IS NULL OR type = 'supplier'"
    )
    op.create_check_constraint(
        op.f("ck_invoices_one_level"), "invoices", "NOT (is_parent AND parent_id IS NOT NULL)"
    )
    op.create_foreign_key(
        "fk_invoices_parent_id_invoices",
        "invoices",
        "invoices",
        ["tenant_id", "parent_id"],
        ["tenant_id", "id"],
    )
    op.create_index(
        "ix_invoices_tenant_id_parent_id",
        "invoices",
        ["tenant_id", "parent_id"],
        unique=False,
        postgresql_where=sa.text("parent_id IS NOT NULL"),
    )
    op.add_column("workspace_settings", sa.Column("company_id", sa.UUID(), nullable=True))


def downgrade() -> None:
    op.drop_column("workspace_settings", "company_id")
    op.drop_index("ix_invoices_tenant_id_parent_id", table_name="invoices")
    op.drop_constraint("fk_invoices_parent_id_invoices", "invoices", type_="foreignkey")
    op.drop_constraint(op.f("ck_invoices_one_level"), "invoices")
    op.drop_constraint(op.f("ck_invoices_job_supplier"), "invoices")
    for name in ("is_parent", "parent_id", "attachments", "flex_transaction_id", "job_id"):
        op.drop_column("invoices", name)
