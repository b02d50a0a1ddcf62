"""Gapless invoice numbering under concurrency (DESIGN.md section 5, reliability notes
section 5): a counter row locked in the issue transaction, so concurrent issues never
collide and a rolled-back issue leaves no gap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
import pytest
from invoicing.v1 import invoices_pb2

from service.invoices import service as invoice_service
from service.kit import auth, db, ids
from service.kit.deps import Deps
from service.kit.pagination import CursorCodec
from tests.conftest import Database, Tokens, sample_invoice


class Rollback(Exception):
    """Raised inside a unit of work to roll it back on purpose."""


async def _drafts(invoices: Any, md: Any, n: int, **overrides: Any) -> list[invoices_pb2.Invoice]:
    return list(
        await asyncio.gather(
            *(
                invoices.CreateInvoice(
                    invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice(**overrides)),
                    metadata=md,
                )
                for _ in range(n)
            )
        )
    )


async def _issue_all(
    invoices: Any, md: Any, drafts: list[invoices_pb2.Invoice]
) -> list[invoices_pb2.Invoice]:
    return list(
        await asyncio.gather(
            *(
                invoices.IssueInvoice(invoices_pb2.IssueInvoiceRequest(id=d.id), metadata=md)
                for d in drafts
            )
        )
    )


async def _issue(invoices: Any, md: Any, invoice_id: str) -> invoices_pb2.Invoice:
    return await invoices.IssueInvoice(invoices_pb2.IssueInvoiceRequest(id=invoice_id), metadata=md)


def _expected(year: int, n: int, start: int = 1) -> list[str]:
    return [f"INV-{year}-{i:04d}" for i in range(start, start + n)]


def _year(invoice: invoices_pb2.Invoice) -> int:
    assert invoice.issue_date.year > 2000
    return invoice.issue_date.year


def _principal(tenant: uuid.UUID) -> auth.Principal:
    return auth.Principal(
        subject="numbering-test",
        tenant_id=tenant,
        app_id=None,
        workspaces=frozenset(),
        permissions=frozenset(auth.PERMISSIONS),
    )


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[db.Database]:
    pool = await db.Database.connect(database.app_url, pool_size=2, statement_timeout_ms=5000)
    yield pool
    await pool.close()


async def test_fifty_concurrent_issues_are_gapless_and_unique(
    invoices: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    drafts = await _drafts(invoices, md, 50)
    issued = await _issue_all(invoices, md, drafts)

    year = _year(issued[0])
    numbers = sorted(i.number for i in issued)
    assert numbers == _expected(year, 50)
    assert all(i.status == invoices_pb2.INVOICE_STATUS_ISSUED for i in issued)
    stored = await admin.fetch(
        "SELECT number FROM invoices WHERE tenant_id = $1 ORDER BY number", tenant
    )
    assert [r["number"] for r in stored] == _expected(year, 50)
    counter = await admin.fetchval(
        "SELECT last_value FROM invoice_number_counters WHERE tenant_id = $1 AND year = $2",
        tenant,
        year,
    )
    assert counter == 50


async def test_two_tenants_issuing_concurrently_each_start_at_one(
    invoices: Any, tokens: Tokens
) -> None:
    tenants = [uuid.uuid4(), uuid.uuid4()]
    mds = [tokens.md(t) for t in tenants]
    drafts = [await _drafts(invoices, m, 20) for m in mds]
    results = await asyncio.gather(
        *(_issue_all(invoices, m, d) for m, d in zip(mds, drafts, strict=True))
    )
    for tenant, issued in zip(tenants, results, strict=True):
        assert {i.tenant_id for i in issued} == {str(tenant)}
        assert sorted(i.number for i in issued) == _expected(_year(issued[0]), 20)


async def test_rolled_back_issue_leaves_no_gap(
    invoices: Any, md: Any, tenant: uuid.UUID, engine: db.Database, settings: Any
) -> None:
    first, rolled_back, later = await _drafts(invoices, md, 3)
    issued = await _issue(invoices, md, first.id)
    year = _year(issued)
    assert issued.number == f"INV-{year}-0001"

    deps = Deps(cursors=CursorCodec(b"x" * 32), settings=settings)
    seen: list[str] = []
    with pytest.raises(Rollback):
        async with db.unit_of_work(engine, tenant) as conn:
            invoice = await invoice_service.issue_invoice(
                conn,
                _principal(tenant),
                invoice_id=ids.decode_id(rolled_back.id, ids.PREFIXES["invoice"], "id"),
                etag="",
                deps=deps,
            )
            seen.append(invoice.draft.number or "")
            raise Rollback
    assert seen == [f"INV-{year}-0002"]

    still_draft = await invoices.GetInvoice(
        invoices_pb2.GetInvoiceRequest(id=rolled_back.id), metadata=md
    )
    assert still_draft.status == invoices_pb2.INVOICE_STATUS_DRAFT
    assert still_draft.number == ""

    assert (await _issue(invoices, md, later.id)).number == seen[0]
    assert (await _issue(invoices, md, rolled_back.id)).number == f"INV-{year}-0003"


async def test_failed_issue_over_grpc_leaves_no_gap(
    invoices: Any, md: Any, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    """A draft that cannot be issued (no line items) must not consume a number."""
    ok_1, ok_2 = await _drafts(invoices, md, 2)
    incomplete = await invoices.CreateInvoice(
        invoices_pb2.CreateInvoiceRequest(invoice=sample_invoice(line_items=[])), metadata=md
    )
    year = _year(await _issue(invoices, md, ok_1.id))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _issue(invoices, md, incomplete.id)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await _issue(invoices, md, ok_2.id)).number == f"INV-{year}-0002"
    assert (
        await admin.fetchval(
            "SELECT last_value FROM invoice_number_counters WHERE tenant_id = $1", tenant
        )
        == 2
    )


async def test_project_sequence_is_gapless_per_project_and_type(invoices: Any, md: Any) -> None:
    project, other_project = str(uuid.uuid4()), str(uuid.uuid4())
    customers = await _drafts(invoices, md, 20, project_id=project)
    suppliers = [
        await invoices.CreateInvoice(
            invoices_pb2.CreateInvoiceRequest(
                invoice=sample_invoice(
                    type=invoices_pb2.INVOICE_TYPE_SUPPLIER,
                    number=f"SUP-{i}",
                    project_id=project,
                )
            ),
            metadata=md,
        )
        for i in range(5)
    ]
    elsewhere = await _drafts(invoices, md, 3, project_id=other_project)

    issued = await _issue_all(invoices, md, [*customers, *suppliers, *elsewhere])
    by_id = {i.id: i for i in issued}

    assert sorted(by_id[d.id].project_sequence_id for d in customers) == list(range(1, 21))
    assert sorted(by_id[d.id].project_sequence_id for d in suppliers) == list(range(1, 6))
    assert sorted(by_id[d.id].project_sequence_id for d in elsewhere) == [1, 2, 3]
    assert all(by_id[d.id].HasField("project_sequence_id") for d in customers)


async def test_invoice_without_project_has_no_project_sequence(invoices: Any, md: Any) -> None:
    (draft,) = await _drafts(invoices, md, 1)
    issued = await _issue(invoices, md, draft.id)
    assert not issued.HasField("project_sequence_id")


async def test_supplier_invoices_do_not_consume_customer_numbers(
    invoices: Any, md: Any, admin: asyncpg.Connection, tenant: uuid.UUID
) -> None:
    first, second = await _drafts(invoices, md, 2)
    supplier = await invoices.CreateInvoice(
        invoices_pb2.CreateInvoiceRequest(
            invoice=sample_invoice(type=invoices_pb2.INVOICE_TYPE_SUPPLIER, number="ACME-77")
        ),
        metadata=md,
    )
    one = await _issue(invoices, md, first.id)
    sup = await _issue(invoices, md, supplier.id)
    two = await _issue(invoices, md, second.id)
    year = _year(one)
    assert (one.number, two.number) == (f"INV-{year}-0001", f"INV-{year}-0002")
    assert sup.number == "ACME-77"
    assert sup.status == invoices_pb2.INVOICE_STATUS_ISSUED
    assert (
        await admin.fetchval(
            "SELECT last_value FROM invoice_number_counters WHERE tenant_id = $1", tenant
        )
        == 2
    )
