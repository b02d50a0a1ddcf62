"""Counterparties: the tenant's contractors with SIRET/SIREN, under RLS

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from service.kit import ddl

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "counterparties",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("siret", sa.Text(), nullable=True),
        sa.Column("siren", sa.Text(), nullable=True),
        sa.Column("vat_number", sa.Text(), nullable=True),
        sa.Column("head_office", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.CheckConstraint("version > 0", name=op.f("ck_counterparties_version")),
        sa.CheckConstraint("siret ~ '^[0-9]{14}$'", name=op.f("ck_counterparties_siret")),
        sa.CheckConstraint(
            "siren IS NOT DISTINCT FROM left(siret, 9)", name=op.f("ck_counterparties_siren")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_counterparties")),
    )
    op.create_index(
        "uq_counterparties_tenant_id_siret",
        "counterparties",
        ["tenant_id", "siret"],
        unique=True,
        postgresql_where=sa.text("siret IS NOT NULL AND deleted_at IS NULL"),
    )
    op.create_index(
        "ix_counterparties_tenant_id_siren",
        "counterparties",
        ["tenant_id", "siren"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_index(
        "ix_counterparties_tenant_id_created_at_id",
        "counterparties",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    role = context.config.attributes.get("app_role", "invoicing_app")
    for statement in ddl.tenant_table("counterparties", role):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("counterparties")
