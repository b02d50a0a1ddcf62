"""Allocations: transactions, exchange rates, allocations, workspace settings, with RLS

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 07:39:38.617483
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from service.kit import ddl

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_TABLES = ("transactions", "exchange_rates", "allocations", "workspace_settings")


def upgrade() -> None:
    op.create_table(
        "exchange_rates",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("base_currency", sa.CHAR(length=3), nullable=False),
        sa.Column("quote_currency", sa.CHAR(length=3), nullable=False),
        sa.Column("rate", sa.Numeric(precision=30, scale=10), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "base_currency <> quote_currency", name=op.f("ck_exchange_rates_distinct_currencies")
        ),
        sa.CheckConstraint("rate > 0", name=op.f("ck_exchange_rates_rate_positive")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_exchange_rates")),
        sa.UniqueConstraint(
            "tenant_id",
            "base_currency",
            "quote_currency",
            "rate_date",
            "source",
            name=op.f("uq_exchange_rates_tenant_id_base_currency_quote_currency_rate_date_source"),
        ),
    )
    op.create_index(
        "ix_exchange_rates_tenant_id_created_at_id",
        "exchange_rates",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_table(
        "transactions",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("app_id", sa.Text(), nullable=True),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column(
            "allocated_amount",
            sa.Numeric(precision=24, scale=4),
            server_default="0",
            nullable=False,
        ),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("reference", sa.Text(), server_default="", nullable=False),
        sa.Column("counterparty_id", sa.UUID(), nullable=True),
        sa.Column("subscription_id", sa.UUID(), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "direction IN ('receivable', 'payable')", name=op.f("ck_transactions_direction")
        ),
        sa.CheckConstraint(
            "allocated_amount >= 0 AND allocated_amount <= amount",
            name=op.f("ck_transactions_allocated_amount"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_transactions_amount_positive")),
        sa.CheckConstraint(
            "deleted_at IS NULL OR allocated_amount = 0",
            name=op.f("ck_transactions_deleted_unallocated"),
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_transactions_version")),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_transactions")),
    )
    op.create_index(
        "ix_transactions_tenant_id_created_at_id",
        "transactions",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_transactions_tenant_id_value_date_id",
        "transactions",
        ["tenant_id", "value_date", "id"],
        unique=False,
    )
    op.create_table(
        "workspace_settings",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), server_default="", nullable=False),
        sa.Column("accounting_currency", sa.CHAR(length=3), server_default="EUR", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.CheckConstraint("version > 0", name=op.f("ck_workspace_settings_version")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_workspace_settings")),
    )
    op.create_table(
        "allocations",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("app_id", sa.Text(), nullable=True),
        sa.Column("invoice_id", sa.UUID(), nullable=False),
        sa.Column("transaction_id", sa.UUID(), nullable=False),
        sa.Column("exchange_rate_id", sa.UUID(), nullable=True),
        sa.Column("accounting_exchange_rate_id", sa.UUID(), nullable=True),
        sa.Column("subscription_id", sa.UUID(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("currency", sa.CHAR(length=3), nullable=False),
        sa.Column("invoice_amount", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("invoice_currency", sa.CHAR(length=3), nullable=False),
        sa.Column("accounting_amount", sa.Numeric(precision=24, scale=4), nullable=False),
        sa.Column("accounting_currency", sa.CHAR(length=3), nullable=False),
        sa.Column("allocation_type", sa.Text(), nullable=False),
        sa.Column("composite_fx_rate", sa.Text(), nullable=True),
        sa.Column("composite_invoice_transaction_summary", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "allocation_type IN ('full', 'partial')", name=op.f("ck_allocations_allocation_type")
        ),
        sa.CheckConstraint(
            "amount > 0 AND invoice_amount > 0 AND accounting_amount >= 0",
            name=op.f("ck_allocations_amounts_positive"),
        ),
        sa.CheckConstraint(
            "currency <> invoice_currency OR (amount = invoice_amount AND exchange_rate_id IS NULL)",
            name=op.f("ck_allocations_same_currency_exact"),
        ),
        sa.CheckConstraint("version > 0", name=op.f("ck_allocations_version")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "accounting_exchange_rate_id"],
            ["exchange_rates.tenant_id", "exchange_rates.id"],
            name="accounting_exchange_rate",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "exchange_rate_id"],
            ["exchange_rates.tenant_id", "exchange_rates.id"],
            name="exchange_rate",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "invoice_id"], ["invoices.tenant_id", "invoices.id"], name="invoice"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "transaction_id"],
            ["transactions.tenant_id", "transactions.id"],
            name="transaction",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_allocations")),
    )
    op.create_index(
        "ix_allocations_tenant_id_created_at_id",
        "allocations",
        ["tenant_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_allocations_tenant_id_invoice_id",
        "allocations",
        ["tenant_id", "invoice_id"],
        unique=False,
    )
    op.create_index(
        "ix_allocations_tenant_id_transaction_id",
        "allocations",
        ["tenant_id", "transaction_id"],
        unique=False,
    )
    role = context.config.attributes.get("app_role", "invoicing_app")
    for table in TENANT_TABLES:
        for statement in ddl.tenant_table(table, role):
            op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_allocations_tenant_id_transaction_id", table_name="allocations")
    op.drop_index("ix_allocations_tenant_id_invoice_id", table_name="allocations")
    op.drop_index("ix_allocations_tenant_id_created_at_id", table_name="allocations")
    op.drop_table("allocations")
    op.drop_table("workspace_settings")
    op.drop_index("ix_transactions_tenant_id_value_date_id", table_name="transactions")
    op.drop_index("ix_transactions_tenant_id_created_at_id", table_name="transactions")
    op.drop_table("transactions")
    op.drop_index("ix_exchange_rates_tenant_id_created_at_id", table_name="exchange_rates")
    op.drop_table("exchange_rates")
