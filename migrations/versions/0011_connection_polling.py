"""Connections: polling progress (cursor, high-water mark, last poll)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("connections", sa.Column("poll_cursor", sa.Text(), nullable=True))
    op.add_column("connections", sa.Column("poll_mark", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "connections",
        sa.Column("last_poll", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("connections", "last_poll")
    op.drop_column("connections", "poll_mark")
    op.drop_column("connections", "poll_cursor")
