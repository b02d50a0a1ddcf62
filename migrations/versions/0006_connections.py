"""Connections: provider connections with sealed secrets and health, under RLS

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from service.kit import ddl

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("endpoint_url", sa.Text(), server_default="", nullable=False),
        sa.Column("api_key_kid", sa.Text(), nullable=True),
        sa.Column("api_key_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("webhook_secret_kid", sa.Text(), nullable=True),
        sa.Column("webhook_secret_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("health", sa.Text(), server_default="ok", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.CheckConstraint("version > 0", name=op.f("ck_connections_version")),
        sa.CheckConstraint(
            "provider ~ '^[a-z][a-z0-9_]{0,31}$'", name=op.f("ck_connections_provider")
        ),
        sa.CheckConstraint(
            "health IN ('ok', 'failing', 'needs_credentials')", name=op.f("ck_connections_health")
        ),
        sa.CheckConstraint(
            "consecutive_failures >= 0", name=op.f("ck_connections_consecutive_failures")
        ),
        sa.CheckConstraint(
            "(api_key_kid IS NULL) = (api_key_sealed IS NULL)",
            name=op.f("ck_connections_api_key_sealed"),
        ),
        sa.CheckConstraint(
            "(webhook_secret_kid IS NULL) = (webhook_secret_sealed IS NULL)",
            name=op.f("ck_connections_webhook_secret_sealed"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_connections")),
    )
    op.create_index(
        "ix_connections_tenant_id_created_at_id",
        "connections",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "uq_connections_tenant_id_provider_active",
        "connections",
        ["tenant_id", "provider"],
        unique=True,
        postgresql_where=sa.text("active AND deleted_at IS NULL"),
    )
    role = context.config.attributes.get("app_role", "invoicing_app")
    for statement in ddl.tenant_table("connections", role):
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("uq_connections_tenant_id_provider_active", table_name="connections")
    op.drop_index("ix_connections_tenant_id_created_at_id", table_name="connections")
    op.drop_table("connections")
