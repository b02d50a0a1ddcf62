"""Webhooks: connection routes (ids only) and received events under RLS

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from service.kit import ddl

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    role = context.config.attributes.get("app_role", "invoicing_app")
    op.create_table(
        "connection_routes",
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.PrimaryKeyConstraint("connection_id", name=op.f("pk_connection_routes")),
    )
    for statement in ddl.system_table("connection_routes", role):
        op.execute(statement)
    # Connections made before this migration (every tenant's: bypassing RLS, or failing).
    op.execute("SET LOCAL row_security = off")
    op.execute(
        "INSERT INTO connection_routes (connection_id, tenant_id)"
        " SELECT id, tenant_id FROM connections ON CONFLICT DO NOTHING"
    )
    op.create_table(
        "webhook_events",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("connection_id", sa.UUID(), nullable=False),
        sa.Column("webhook_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "connection_id", "webhook_id", name=op.f("pk_webhook_events")
        ),
    )
    op.create_index(
        "ix_webhook_events_pending",
        "webhook_events",
        ["tenant_id", "connection_id", "received_at"],
        unique=False,
        postgresql_where=sa.text("processed_at IS NULL"),
    )
    for statement in ddl.tenant_table("webhook_events", role):
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("webhook_events")
    op.drop_table("connection_routes")
