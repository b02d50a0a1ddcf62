"""Idempotency keys per app: app_id joins the key

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 23:00:00

A stored response was keyed by (tenant, method, request_id): app Y sending app X's
request_id got app X's response. Existing keys belong to no app ('') unless they can be
told apart, which they cannot: after this migration an app's retry of a request made
before it runs once more, which the 24 h window makes rare; person tokens keep theirs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "idempotency_keys", sa.Column("app_id", sa.Text(), server_default="", nullable=False)
    )
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key(
        "pk_idempotency_keys", "idempotency_keys", ["tenant_id", "app_id", "method", "request_id"]
    )


def downgrade() -> None:
    # Keys of several apps may share (tenant, method, request_id): keep one of each.
    op.execute(
        "DELETE FROM idempotency_keys k USING idempotency_keys o"
        " WHERE k.tenant_id = o.tenant_id AND k.method = o.method"
        " AND k.request_id = o.request_id AND k.app_id > o.app_id"
    )
    op.drop_constraint("pk_idempotency_keys", "idempotency_keys", type_="primary")
    op.create_primary_key(
        "pk_idempotency_keys", "idempotency_keys", ["tenant_id", "method", "request_id"]
    )
    op.drop_column("idempotency_keys", "app_id")
