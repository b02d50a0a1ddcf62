"""The worker's queue: work_items (a system table, outside tenant RLS)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 22:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from service.kit import ddl

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "work_items",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "due_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("lease_owner", sa.Text(), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("runs", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("tenant_id", "task", "key", name=op.f("pk_work_items")),
    )
    op.create_index("ix_work_items_task_due_at", "work_items", ["task", "due_at"], unique=False)
    role = context.config.attributes.get("app_role", "invoicing_app")
    for statement in ddl.system_table("work_items", role):
        op.execute(statement)
    # Tenants that already hold idempotency keys get their purge item (the claim enqueues
    # it for new keys); the worker deletes the expired ones.
    op.execute(
        "INSERT INTO work_items (tenant_id, task, key, due_at) "
        "SELECT DISTINCT tenant_id, 'idempotency.purge', '', now() FROM idempotency_keys "
        "ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_index("ix_work_items_task_due_at", table_name="work_items")
    op.drop_table("work_items")
