"""`record`, the function the ingestion and delivery pipelines call inside their own
transaction: idempotent, tenant-bound, and all-or-nothing with the caller's work."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from invoicing.v1 import connections_pb2 as cpb
from invoicing.v1 import connections_pb2_grpc, invoices_pb2_grpc
from invoicing.v1 import invoices_pb2 as ipb

from service.kit import auth, db, ids
from service.kit.errors import DomainError
from service.provenance import service as provenance
from tests.conftest import Database, Tokens, sample_invoice


@pytest.fixture
async def pool(database: Database) -> AsyncIterator[db.Database]:
    opened = await db.Database.connect(database.app_url, pool_size=2, statement_timeout_ms=5000)
    yield opened
    await opened.close()


def _system(tenant: uuid.UUID) -> auth.Principal:
    return auth.Principal("pipeline:yooz", tenant, None, frozenset(), frozenset({"system"}))


async def _invoice_and_connection(
    channel: grpc.aio.Channel, tokens: Tokens, tenant: uuid.UUID
) -> tuple[uuid.UUID, uuid.UUID]:
    md = tokens.md(tenant)
    invoice = await invoices_pb2_grpc.InvoiceServiceStub(channel).CreateInvoice(
        ipb.CreateInvoiceRequest(invoice=sample_invoice()), metadata=md
    )
    connection = await connections_pb2_grpc.ConnectionServiceStub(channel).CreateConnection(
        cpb.CreateConnectionRequest(provider="yooz", api_key="k"), metadata=md
    )
    return (
        ids.decode_id(invoice.id, "inv", "id"),
        ids.decode_id(connection.id, "con", "id"),
    )


async def test_record_is_idempotent_and_bound_to_the_tenant(
    channel: grpc.aio.Channel, tokens: Tokens, pool: db.Database, admin: asyncpg.Connection
) -> None:
    tenant, other = uuid.uuid4(), uuid.uuid4()
    invoice_id, connection_id = await _invoice_and_connection(channel, tokens, tenant)
    foreign_invoice, foreign_connection = await _invoice_and_connection(channel, tokens, other)
    system = _system(tenant)
    async with db.unit_of_work(pool, tenant) as conn:
        first = await provenance.record(
            conn, system, invoice_id=invoice_id, connection_id=connection_id, direction="input"
        )
        again = await provenance.record(
            conn, system, invoice_id=invoice_id, connection_id=connection_id, direction="input"
        )
        out = await provenance.record(
            conn, system, invoice_id=invoice_id, connection_id=connection_id, direction="output"
        )
    assert again.id == first.id and out.id != first.id
    assert (first.created_by, first.updated_at, first.deleted_at) == ("pipeline:yooz", None, None)
    # Another tenant's connection: NOT_FOUND, like an unknown one.
    for connection in (foreign_connection, uuid.uuid4()):
        with pytest.raises(DomainError) as failure:
            async with db.unit_of_work(pool, tenant) as conn:
                await provenance.record(
                    conn,
                    system,
                    invoice_id=invoice_id,
                    connection_id=connection,
                    direction="input",
                )
        assert failure.value.code.name == "NOT_FOUND"
    # Another tenant's invoice: the tenant-led foreign key refuses it.
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        async with db.unit_of_work(pool, tenant) as conn:
            await provenance.record(
                conn,
                system,
                invoice_id=foreign_invoice,
                connection_id=connection_id,
                direction="input",
            )
    with pytest.raises(ValueError):
        async with db.unit_of_work(pool, tenant) as conn:
            await provenance.record(
                conn,
                system,
                invoice_id=invoice_id,
                connection_id=connection_id,
                direction="sideways",
            )
    rows = await admin.fetch(
        "SELECT direction::text FROM invoice_provenances WHERE tenant_id = $1 ORDER BY 1", tenant
    )
    assert [r["direction"] for r in rows] == ["input", "output"]


async def test_record_rolls_back_with_the_pipeline_transaction(
    channel: grpc.aio.Channel, tokens: Tokens, pool: db.Database, admin: asyncpg.Connection
) -> None:
    tenant = uuid.uuid4()
    invoice_id, connection_id = await _invoice_and_connection(channel, tokens, tenant)

    class IngestionFailed(Exception):
        pass

    with pytest.raises(IngestionFailed):
        async with db.unit_of_work(pool, tenant) as conn:
            await provenance.record(
                conn,
                _system(tenant),
                invoice_id=invoice_id,
                connection_id=connection_id,
                direction="input",
            )
            raise IngestionFailed
    count = await admin.fetchval(
        "SELECT count(*) FROM invoice_provenances WHERE tenant_id = $1", tenant
    )
    assert count == 0
