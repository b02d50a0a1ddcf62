"""Backfill provenance input rows from invoices.source_connection_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 01:10:00

Batched, one transaction per batch (outside the migration's own transaction), idempotent:
see service/provenance/backfill.py. Rows the legacy writer adds later are picked up by
rerunning `python -m service.provenance.backfill` (docs/provenance-migration.md). Downgrade
removes only the rows this backfill wrote.
"""

from collections.abc import Sequence

from alembic import op

from service.provenance import backfill

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        # Every tenant's rows: fail (rather than see none) if this role cannot bypass RLS.
        bind.exec_driver_sql("SET row_security = off")
        try:
            backfill.run(lambda sql, params: bind.exec_driver_sql(sql, params).first())
        finally:
            bind.exec_driver_sql("RESET row_security")


def downgrade() -> None:
    op.execute("SET LOCAL row_security = off")
    op.execute(f"DELETE FROM invoice_provenances WHERE created_by = '{backfill.BY}'")
