"""invoice_get(): read one invoice in a single round trip, tenant set inside

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

GetInvoice is the hottest read. Instead of BEGIN + set_config, SELECT, COMMIT (three
round trips), the app calls this function: it sets the tenant for the statement's own
implicit transaction, then selects. SECURITY INVOKER, so row-level security applies
exactly as for a plain SELECT by the app role.
"""

from collections.abc import Sequence

from alembic import context, op

from service.kit import ddl

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = """
CREATE FUNCTION invoice_get(p_tenant uuid, p_id uuid, p_app text)
RETURNS SETOF invoices
LANGUAGE plpgsql
SECURITY INVOKER
AS $$
BEGIN
    PERFORM set_config('app.tenant_id', p_tenant::text, true);
    IF p_app IS NULL THEN
        RETURN QUERY SELECT * FROM invoices WHERE tenant_id = p_tenant AND id = p_id;
    ELSE
        RETURN QUERY SELECT * FROM invoices
            WHERE tenant_id = p_tenant AND id = p_id AND app_id = p_app;
    END IF;
END
$$
"""


def upgrade() -> None:
    role = ddl.ident(context.config.attributes.get("app_role", "invoicing_app"))
    op.execute(FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION invoice_get(uuid, uuid, text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION invoice_get(uuid, uuid, text) TO {role}")


def downgrade() -> None:
    op.execute("DROP FUNCTION invoice_get(uuid, uuid, text)")
