"""The CHECK constraints behind the row-locked allocation rules, tried directly as the
app role (RLS on): a write that bypasses the service's checks still cannot over-allocate."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from invoicing.v1 import allocations_pb2 as apb
from invoicing.v1 import allocations_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb

from service import registry
from service.edge import status
from service.kit import ids
from service.kit.errors import Code
from tests.conftest import APP_ROLE, Database, sample_invoice

Metadata = tuple[tuple[str, str], ...]


@pytest.fixture
async def app_conn(database: Database, tenant: uuid.UUID) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database.admin_url)
    await conn.execute(f'SET ROLE "{APP_ROLE}"')
    await conn.execute("SELECT set_config('app.tenant_id', $1, false)", str(tenant))
    yield conn
    await conn.close()


async def paid_invoice_and_transaction(
    invoices: invoices_pb2_grpc.InvoiceServiceStub,
    allocations: allocations_pb2_grpc.AllocationServiceStub,
    md: Metadata,
) -> tuple[uuid.UUID, uuid.UUID]:
    draft = await invoices.CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md
    )
    await invoices.IssueInvoice(ipb.IssueInvoiceRequest(id=draft.id), metadata=md)
    txn = await allocations.CreateTransaction(
        apb.CreateTransactionRequest(
            transaction=apb.Transaction(
                amount="100.00", currency="EUR", direction=apb.TRANSACTION_DIRECTION_RECEIVABLE
            )
        ),
        metadata=md,
    )
    await allocations.CreateAllocation(
        apb.CreateAllocationRequest(
            allocation=apb.Allocation(invoice_id=draft.id, transaction_id=txn.id, amount="60.00")
        ),
        metadata=md,
    )
    return ids.decode_id(draft.id, "inv", "id"), ids.decode_id(txn.id, "txn", "id")


@pytest.mark.parametrize(
    ("statement", "constraint"),
    [
        ("UPDATE invoices SET amount_paid = total + 0.01 WHERE id = $1", "ck_invoices_amount_paid"),
        ("UPDATE invoices SET amount_paid = -0.01 WHERE id = $1", "ck_invoices_amount_paid"),
        (
            "UPDATE transactions SET allocated_amount = amount + 0.01 WHERE id = $2",
            "ck_transactions_allocated_amount",
        ),
        (
            "UPDATE transactions SET deleted_at = now() WHERE id = $2",
            "ck_transactions_deleted_unallocated",
        ),
        (
            "UPDATE allocations SET invoice_amount = amount + 1 WHERE invoice_id = $1"
            " AND transaction_id = $2",
            "ck_allocations_same_currency_exact",
        ),
    ],
)
async def test_check_constraints_refuse_over_allocation(
    invoices: invoices_pb2_grpc.InvoiceServiceStub,
    allocations: allocations_pb2_grpc.AllocationServiceStub,
    md: Metadata,
    app_conn: asyncpg.Connection,
    statement: str,
    constraint: str,
) -> None:
    invoice_id, txn_id = await paid_invoice_and_transaction(invoices, allocations, md)
    sql = statement
    for placeholder in ("$1", "$2"):  # every statement takes both ids
        if placeholder not in sql:
            sql += f" AND {placeholder}::uuid IS NOT NULL"
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await app_conn.execute(sql, invoice_id, txn_id)
    assert caught.value.constraint_name == constraint
    paid = await app_conn.fetchval("SELECT amount_paid FROM invoices WHERE id = $1", invoice_id)
    assert str(paid) == "60.0000"


def test_a_backstop_violation_maps_to_failed_precondition_not_internal() -> None:
    exc = asyncpg.CheckViolationError("new row violates check constraint")
    exc.constraint_name = "ck_invoices_amount_paid"
    mapped = status.database_error(exc, registry.constraint_errors(registry.discover()))
    assert mapped is not None
    assert (mapped.code, mapped.reason) == (Code.FAILED_PRECONDITION, "MONEY_INVARIANT")
    assert mapped.metadata == {"constraint": "ck_invoices_amount_paid"}
    other = asyncpg.CheckViolationError("another constraint")
    other.constraint_name = "ck_invoices_dates"
    assert status.database_error(other, registry.constraint_errors(registry.discover())) is None
