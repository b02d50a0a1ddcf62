"""Invoices: ingestion columns (external document, supplier match, review)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 02:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("external_provider", sa.Text()),
    ("external_id", sa.Text()),
    ("external_updated_at", sa.DateTime(timezone=True)),
    ("external_totals", postgresql.JSONB(astext_type=sa.Text())),
    ("supplier_name", sa.Text()),
    ("supplier_siret", sa.Text()),
    ("supplier_siren", sa.Text()),
    ("match_status", sa.Text()),
    ("match_reason", sa.Text()),
    ("review_reason", sa.Text()),
)


def upgrade() -> None:
    for name, type_ in COLUMNS:
        op.add_column("invoices", sa.Column(name, type_, nullable=True))
    op.create_check_constraint(
        op.f("ck_invoices_match_status"),
        "invoices",
        "match_status IN ('matched', 'unmatched', 'ambiguous')",
    )
    op.create_check_constraint(
        op.f("ck_invoices_external"),
        "invoices",
        "(external_id IS NULL) = (external_provider IS NULL)",
    )
    op.create_index(
        "uq_invoices_external",
        "invoices",
        ["tenant_id", "external_provider", "external_id"],
        unique=True,
        postgresql_where=sa.text("external_id IS NOT NULL"),
    )
    op.create_index(
        "ix_invoices_unmatched_siren",
        "invoices",
        ["tenant_id", "supplier_siren"],
        unique=False,
        postgresql_where=sa.text("match_status IN ('unmatched', 'ambiguous')"),
    )


def downgrade() -> None:
    op.drop_index("ix_invoices_unmatched_siren", table_name="invoices")
    op.drop_index("uq_invoices_external", table_name="invoices")
    op.drop_constraint(op.f("ck_invoices_external"), "invoices")
    op.drop_constraint(op.f("ck_invoices_match_status"), "invoices")
    for name, _type in reversed(COLUMNS):
        op.drop_column("invoices", name)
