"""Allocations under concurrency (docs/allocations-contract.md, "Locks"): many
simultaneous PayInvoice / CreateAllocation / DeleteAllocation calls over the real gRPC
port. Every call either succeeds or fails with the contract's FAILED_PRECONDITION
reason; the sums on both sides (invoice `amount_paid`, transaction `allocated_amount`)
always equal the live allocations and never exceed the total / amount.

Run with `-s` to see the figures (calls, successes, failures, elapsed seconds).
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
import uuid
from collections.abc import Awaitable, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import asyncpg
import grpc
from invoicing.v1 import allocations_pb2, invoices_pb2

from service.kit import ids
from tests.conftest import error_info, sample_invoice

T = TypeVar("T")

DOMAIN = "invoicing.v1"
EXCEEDS_DUE = "AMOUNT_EXCEEDS_AMOUNT_DUE"
EXCEEDS_UNALLOCATED = "AMOUNT_EXCEEDS_UNALLOCATED"
ZERO = Decimal("0")


# ---- helpers ----------------------------------------------------------------------


def cents(n: int) -> str:
    """1234 -> "12.34" (exact to the cent)."""
    assert n > 0
    return f"{n // 100}.{n % 100:02d}"


def dec(text: str) -> Decimal:
    assert text != "", "expected a decimal string, got an empty string"
    return Decimal(text)


def _uuid(public_id: str, kind: str) -> uuid.UUID:
    return ids.decode_id(public_id, ids.PREFIXES[kind], "id")


def _invoice_totalling(total: str) -> invoices_pb2.Invoice:
    """A customer EUR draft whose total is exactly `total` (one line, no tax)."""
    return sample_invoice(
        line_items=[
            invoices_pb2.LineItem(description="Work", quantity="1", unit_price=total, tax_rate="0")
        ]
    )


async def _issued_invoices(invoices: Any, md: Any, totals: Sequence[str]) -> list[Any]:
    drafts = await asyncio.gather(
        *(
            invoices.CreateInvoice(
                invoices_pb2.CreateInvoiceRequest(invoice=_invoice_totalling(t)), metadata=md
            )
            for t in totals
        )
    )
    issued = await asyncio.gather(
        *(
            invoices.IssueInvoice(invoices_pb2.IssueInvoiceRequest(id=d.id), metadata=md)
            for d in drafts
        )
    )
    for inv, total in zip(issued, totals, strict=True):
        assert inv.status == invoices_pb2.INVOICE_STATUS_ISSUED
        assert dec(inv.total) == dec(total)
        assert dec(inv.amount_paid) == ZERO
    return list(issued)


async def _transaction(allocations: Any, md: Any, amount: str) -> Any:
    return await allocations.CreateTransaction(
        allocations_pb2.CreateTransactionRequest(
            transaction=allocations_pb2.Transaction(
                direction=allocations_pb2.TRANSACTION_DIRECTION_RECEIVABLE,
                amount=amount,
                currency="EUR",
                reference="concurrency test",
            )
        ),
        metadata=md,
    )


def _pay(invoices: Any, md: Any, invoice_id: str, amount: str, request_id: str = "") -> Any:
    return invoices.PayInvoice(
        invoices_pb2.PayInvoiceRequest(id=invoice_id, amount=amount, request_id=request_id),
        metadata=md,
    )


def _allocate(allocations: Any, md: Any, invoice_id: str, txn_id: str, amount: str) -> Any:
    return allocations.CreateAllocation(
        allocations_pb2.CreateAllocationRequest(
            allocation=allocations_pb2.Allocation(
                invoice_id=invoice_id, transaction_id=txn_id, amount=amount
            )
        ),
        metadata=md,
    )


async def _settle(calls: Sequence[Awaitable[T]]) -> tuple[list[Any], float]:
    """Run every call at once; gRPC errors are returned in place, anything else raises."""
    started = time.perf_counter()
    results = await asyncio.gather(*calls, return_exceptions=True)
    elapsed = time.perf_counter() - started
    for r in results:
        if isinstance(r, BaseException) and not isinstance(r, grpc.aio.AioRpcError):
            raise r
    return list(results), elapsed


def _reason(err: grpc.aio.AioRpcError) -> str:
    """`domain/reason` of the single ErrorInfo, or a marker when it is missing."""
    try:
        info = error_info(err)
    except AssertionError:
        return "<no single ErrorInfo>"
    return f"{info.domain}/{info.reason}"


def _describe(err: grpc.aio.AioRpcError) -> str:
    return f"{err.code().name} {_reason(err)}: {err.details()}"


def _assert_only(errors: Sequence[grpc.aio.AioRpcError], allowed: set[str]) -> None:
    """Every error is FAILED_PRECONDITION with one of the `allowed` reasons."""
    wanted = {f"{DOMAIN}/{r}" for r in allowed}
    bad = [
        e
        for e in errors
        if e.code() != grpc.StatusCode.FAILED_PRECONDITION or _reason(e) not in wanted
    ]
    if bad:
        summary = collections.Counter(_describe(e) for e in bad)
        raise AssertionError(
            f"{len(bad)} of {len(errors)} failures are not FAILED_PRECONDITION "
            f"{sorted(allowed)}: {dict(summary.most_common(10))}"
        )


def _assert_exceeds_due_metadata(err: grpc.aio.AioRpcError, amount: str, total: str) -> None:
    md = error_info(err).metadata
    assert dec(md["invoiceAmount"]) == dec(amount), dict(md)
    assert dec(md["amountDue"]) < dec(amount), dict(md)
    assert dec(md["total"]) == dec(total), dict(md)
    assert dec(md["amountPaid"]) + dec(md["amountDue"]) == dec(total), dict(md)
    assert md["currency"] == "EUR", dict(md)


def _assert_exceeds_unallocated_metadata(err: grpc.aio.AioRpcError, amount: str) -> None:
    md = error_info(err).metadata
    assert dec(md["amount"]) == dec(amount), dict(md)
    assert dec(md["unallocatedAmount"]) < dec(amount), dict(md)
    assert md["currency"] == "EUR", dict(md)


def _assert_payment_state(inv: Any) -> None:
    """payment_status, amount_due and paid_at agree with amount_paid and total."""
    paid, total = dec(inv.amount_paid), dec(inv.total)
    assert ZERO <= paid <= total, (inv.amount_paid, inv.total)
    assert dec(inv.amount_due) == total - paid, (inv.amount_due, inv.amount_paid, inv.total)
    if paid == total:
        expected = invoices_pb2.PAYMENT_STATUS_PAID
    elif paid == ZERO:
        expected = invoices_pb2.PAYMENT_STATUS_UNPAID
    else:
        expected = invoices_pb2.PAYMENT_STATUS_PARTIALLY_PAID
    assert inv.payment_status == expected, (
        invoices_pb2.PaymentStatus.Name(inv.payment_status),
        invoices_pb2.PaymentStatus.Name(expected),
        inv.amount_paid,
        inv.total,
    )
    assert inv.HasField("paid_at") == (paid == total), (inv.amount_paid, inv.total, inv.paid_at)


async def _list_allocations(allocations: Any, md: Any, flt: str, **kw: Any) -> list[Any]:
    out: list[Any] = []
    cursor = ""
    while True:
        page = await allocations.ListAllocations(
            allocations_pb2.ListAllocationsRequest(limit=200, cursor=cursor, filter=flt, **kw),
            metadata=md,
        )
        out += page.data
        if not page.next_cursor:
            return out
        cursor = page.next_cursor


async def _sql_live_invoice_sum(
    admin: asyncpg.Connection, tenant: uuid.UUID, invoice_id: str
) -> Decimal:
    value = await admin.fetchval(
        "SELECT coalesce(sum(invoice_amount), 0) FROM allocations"
        " WHERE tenant_id = $1 AND invoice_id = $2 AND deleted_at IS NULL",
        tenant,
        _uuid(invoice_id, "invoice"),
    )
    return Decimal(value)


async def _sql_live_transaction_sum(
    admin: asyncpg.Connection, tenant: uuid.UUID, txn_id: str
) -> Decimal:
    value = await admin.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM allocations"
        " WHERE tenant_id = $1 AND transaction_id = $2 AND deleted_at IS NULL",
        tenant,
        _uuid(txn_id, "transaction"),
    )
    return Decimal(value)


async def _assert_invoice_sums(
    invoices: Any,
    allocations: Any,
    md: Any,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    invoice_id: str,
    expected_paid: Decimal,
) -> Any:
    """The invoice's amount_paid == expected == live allocations (API and SQL)."""
    inv = await invoices.GetInvoice(invoices_pb2.GetInvoiceRequest(id=invoice_id), metadata=md)
    live = await _list_allocations(allocations, md, f'invoice_id = "{invoice_id}"')
    assert all(a.invoice_id == invoice_id and not a.HasField("deleted_at") for a in live)
    listed = sum((dec(a.invoice_amount) for a in live), ZERO)
    sql = await _sql_live_invoice_sum(admin, tenant, invoice_id)
    row = await admin.fetchrow(
        "SELECT amount_paid, total, payment_status, paid_at FROM invoices"
        " WHERE tenant_id = $1 AND id = $2",
        tenant,
        _uuid(invoice_id, "invoice"),
    )
    figures = {
        "expected": expected_paid,
        "api amount_paid": dec(inv.amount_paid),
        "ListAllocations sum": listed,
        "SQL live sum": sql,
        "SQL invoices.amount_paid": row["amount_paid"],
        "total": dec(inv.total),
    }
    assert expected_paid == dec(inv.amount_paid) == listed == sql == row["amount_paid"], figures
    assert row["amount_paid"] <= row["total"], figures
    _assert_payment_state(inv)
    if row["amount_paid"] == row["total"]:
        assert row["payment_status"] == "paid", figures
    elif row["amount_paid"] == 0:
        assert row["payment_status"] == "unpaid", figures
    else:
        assert row["payment_status"] == "partially_paid", figures
    assert (row["paid_at"] is not None) == (row["amount_paid"] == row["total"])
    return inv


async def _assert_transaction_sums(
    allocations: Any,
    md: Any,
    admin: asyncpg.Connection,
    tenant: uuid.UUID,
    txn_id: str,
    expected_allocated: Decimal,
) -> Any:
    txn = await allocations.GetTransaction(
        allocations_pb2.GetTransactionRequest(id=txn_id), metadata=md
    )
    live = await _list_allocations(allocations, md, f'transaction_id = "{txn_id}"')
    listed = sum((dec(a.amount) for a in live), ZERO)
    sql = await _sql_live_transaction_sum(admin, tenant, txn_id)
    row = await admin.fetchrow(
        "SELECT amount, allocated_amount FROM transactions WHERE tenant_id = $1 AND id = $2",
        tenant,
        _uuid(txn_id, "transaction"),
    )
    figures = {
        "expected": expected_allocated,
        "api allocated_amount": dec(txn.allocated_amount),
        "ListAllocations sum": listed,
        "SQL live sum": sql,
        "SQL transactions.allocated_amount": row["allocated_amount"],
        "amount": dec(txn.amount),
    }
    assert (
        expected_allocated == dec(txn.allocated_amount) == listed == sql == row["allocated_amount"]
    ), figures
    assert dec(txn.allocated_amount) <= dec(txn.amount), figures
    assert dec(txn.unallocated_amount) == dec(txn.amount) - dec(txn.allocated_amount), figures
    return txn


# ---- 1. random amounts against one invoice ----------------------------------------


async def test_200_concurrent_random_payments_never_overpay(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    total = "3000.00"
    (inv,) = await _issued_invoices(invoices, md, [total])
    rng = random.Random(20261121)
    amounts = [cents(rng.randint(1, 5000)) for _ in range(200)]
    assert sum(map(dec, amounts)) > dec(total)  # not all of them fit

    results, elapsed = await _settle([_pay(invoices, md, inv.id, a) for a in amounts])

    ok = [
        (a, r) for a, r in zip(amounts, results, strict=True) if isinstance(r, invoices_pb2.Invoice)
    ]
    failed = [
        (a, r) for a, r in zip(amounts, results, strict=True) if isinstance(r, grpc.aio.AioRpcError)
    ]
    paid = sum((dec(a) for a, _ in ok), ZERO)
    print(
        f"\n[pay random] calls={len(amounts)} ok={len(ok)} failed={len(failed)} "
        f"paid={paid} total={total} requested={sum(map(dec, amounts))} elapsed={elapsed:.2f}s"
    )
    _assert_only([e for _, e in failed], {EXCEEDS_DUE})
    for a, e in failed:
        _assert_exceeds_due_metadata(e, a, total)
    assert paid <= dec(total), (paid, total)
    assert ok and failed

    final = await _assert_invoice_sums(invoices, allocations, md, admin, tenant, inv.id, paid)
    print(
        f"[pay random] final amount_paid={final.amount_paid} "
        f"payment_status={invoices_pb2.PaymentStatus.Name(final.payment_status)}"
    )
    # Each successful PayInvoice created exactly one transaction, fully allocated; a
    # failed one left nothing behind.
    txns = await admin.fetch(
        "SELECT amount, allocated_amount FROM transactions WHERE tenant_id = $1", tenant
    )
    assert len(txns) == len(ok), (len(txns), len(ok))
    assert sorted(r["amount"] for r in txns) == sorted(dec(a) for a, _ in ok)
    assert all(r["allocated_amount"] == r["amount"] for r in txns)
    assert await admin.fetchval(
        "SELECT count(*) FROM allocations WHERE tenant_id = $1", tenant
    ) == len(ok)

    # Each response is the invoice right after its own payment: ordered by amount_paid,
    # consecutive responses differ by exactly that call's amount (a serial history).
    for _, r in ok:
        _assert_payment_state(r)
    chain = sorted(ok, key=lambda pair: dec(pair[1].amount_paid))
    previous = ZERO
    for a, r in chain:
        assert dec(r.amount_paid) - previous == dec(a), (
            "PayInvoice responses are not the per-call updated invoice",
            previous,
            a,
            r.amount_paid,
        )
        previous = dec(r.amount_paid)
    assert previous == paid


# ---- 2. equal amounts ---------------------------------------------------------------


async def _equal_payments(
    invoices: Any,
    allocations: Any,
    md: Any,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    total: str,
    amount: str,
) -> None:
    (inv,) = await _issued_invoices(invoices, md, [total])
    calls = 200
    results, elapsed = await _settle([_pay(invoices, md, inv.id, amount) for _ in range(calls)])
    ok = [r for r in results if isinstance(r, invoices_pb2.Invoice)]
    failed = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    fits = int(dec(total) // dec(amount))
    assert fits <= calls
    print(
        f"\n[pay equal {amount} of {total}] calls={calls} ok={len(ok)} failed={len(failed)} "
        f"expected_ok={fits} elapsed={elapsed:.2f}s"
    )
    _assert_only(failed, {EXCEEDS_DUE})
    for e in failed:
        _assert_exceeds_due_metadata(e, amount, total)
    assert len(ok) == fits, (len(ok), fits)
    expected_paid = dec(amount) * fits
    final = await _assert_invoice_sums(
        invoices, allocations, md, admin, tenant, inv.id, expected_paid
    )
    is_multiple = dec(total) % dec(amount) == ZERO
    assert (final.payment_status == invoices_pb2.PAYMENT_STATUS_PAID) == is_multiple
    assert sorted(dec(r.amount_paid) for r in ok) == [dec(amount) * k for k in range(1, fits + 1)]


async def test_200_concurrent_equal_payments_not_a_multiple(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    # 1440.00 / 13.00 = 110.77 -> 110 payments fit, 10.00 stays due.
    await _equal_payments(invoices, allocations, md, tenant, admin, "1440.00", "13.00")


async def test_200_concurrent_equal_payments_exact_multiple_ends_paid(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    # 1440.00 / 9.60 = 150 exactly: the invoice ends paid; the other 50 are refused.
    await _equal_payments(invoices, allocations, md, tenant, admin, "1440.00", "9.60")


async def test_200_concurrent_equal_odd_cents(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    # 1234.57 / 7.01 = 176.11 -> 176 fit.
    await _equal_payments(invoices, allocations, md, tenant, admin, "1234.57", "7.01")


# ---- 3. one transaction split across many invoices ------------------------------------


async def test_one_transaction_split_across_50_invoices_concurrently(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    txn_amount = "1000.00"
    txn = await _transaction(allocations, md, txn_amount)
    invs = await _issued_invoices(invoices, md, ["1440.00"] * 50)
    rng = random.Random(3)
    amounts = [cents(rng.randint(1000, 4000)) for _ in invs]  # 10.00 .. 40.00
    requested = sum(map(dec, amounts))
    assert requested > dec(txn_amount)

    results, elapsed = await _settle(
        [_allocate(allocations, md, i.id, txn.id, a) for i, a in zip(invs, amounts, strict=True)]
    )
    ok = [
        (i, a, r)
        for i, a, r in zip(invs, amounts, results, strict=True)
        if isinstance(r, allocations_pb2.Allocation)
    ]
    failed = [
        (a, r) for a, r in zip(amounts, results, strict=True) if isinstance(r, grpc.aio.AioRpcError)
    ]
    allocated = sum((dec(a) for _, a, _ in ok), ZERO)
    print(
        f"\n[split txn] calls={len(amounts)} ok={len(ok)} failed={len(failed)} "
        f"allocated={allocated} amount={txn_amount} requested={requested} elapsed={elapsed:.2f}s"
    )
    _assert_only([e for _, e in failed], {EXCEEDS_UNALLOCATED})
    for a, e in failed:
        _assert_exceeds_unallocated_metadata(e, a)
    assert ok and failed
    for inv, a, alc in ok:
        assert alc.invoice_id == inv.id and alc.transaction_id == txn.id
        assert dec(alc.amount) == dec(a) == dec(alc.invoice_amount)
    assert allocated <= dec(txn_amount)
    await _assert_transaction_sums(allocations, md, admin, tenant, txn.id, allocated)

    by_invoice = {inv.id: dec(a) for inv, a, _ in ok}
    got = await asyncio.gather(
        *(invoices.GetInvoice(invoices_pb2.GetInvoiceRequest(id=i.id), metadata=md) for i in invs)
    )
    for inv in got:
        assert dec(inv.amount_paid) == by_invoice.get(inv.id, ZERO), inv.id
        _assert_payment_state(inv)


# ---- 4. grid of transactions x invoices ----------------------------------------------


async def _deadlocks(server: Any, admin: asyncpg.Connection) -> int:
    """pg_stat_database.deadlocks once the server's pooled backends have flushed their
    statistics. The edge retries a deadlock (rpc.Edge), so a broken lock order would
    not show as an error; it shows here. A backend flushes its pending statistics when
    it exits: replace every pooled connection, then wait until the old backends are gone.
    """
    query = (
        "SELECT pid FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = 'invoicing'"
    )
    old = {r["pid"] for r in await admin.fetch(query)}
    pool = server.database.pool
    await pool.expire_connections()
    held = [await pool.acquire() for _ in range(pool.get_max_size())]
    for conn in held:
        await pool.release(conn)
    deadline = time.monotonic() + 10
    while old & {r["pid"] for r in await admin.fetch(query)}:
        assert time.monotonic() < deadline, "the old pooled backends did not exit"
        await asyncio.sleep(0.05)
    value = await admin.fetchval(
        "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
    )
    return int(value)


async def test_grid_of_transactions_and_invoices_in_random_order(
    invoices: Any,
    allocations: Any,
    md: Any,
    tenant: uuid.UUID,
    admin: asyncpg.Connection,
    server: Any,
) -> None:
    """5 transactions x 5 invoices: 5 new allocations per pair plus the reversal of one
    earlier allocation per pair, all at once in random order. CreateAllocation and
    DeleteAllocation both lock the invoice, then the transaction: no deadlock (not even
    one retried by the edge), no INTERNAL; both sides stay consistent."""
    invs = await _issued_invoices(invoices, md, ["300.00"] * 5)
    txns = list(await asyncio.gather(*(_transaction(allocations, md, "280.00") for _ in range(5))))
    earlier, _ = await _settle(
        [_allocate(allocations, md, i.id, t.id, "10.00") for i in invs for t in txns]
    )
    assert all(isinstance(r, allocations_pb2.Allocation) for r in earlier), [
        _describe(r) for r in earlier if isinstance(r, grpc.aio.AioRpcError)
    ]
    rng = random.Random(44)
    plan: list[tuple[str, int, int, str]] = [
        ("create", i, t, cents(rng.randint(500, 4000)))
        for i in range(5)
        for t in range(5)
        for _ in range(5)
    ] + [("delete", k // 5, k % 5, a.id) for k, a in enumerate(earlier)]
    rng.shuffle(plan)
    requested = sum(dec(x) for kind, _, _, x in plan if kind == "create")
    assert requested > 5 * dec("300.00") > 5 * dec("280.00")

    deadlocks_before = await _deadlocks(server, admin)
    results, elapsed = await _settle(
        [
            _allocate(allocations, md, invs[i].id, txns[t].id, x)
            if kind == "create"
            else allocations.DeleteAllocation(
                allocations_pb2.DeleteAllocationRequest(id=x), metadata=md
            )
            for kind, i, t, x in plan
        ]
    )
    deadlocks = await _deadlocks(server, admin) - deadlocks_before

    creates = [(p, r) for p, r in zip(plan, results, strict=True) if p[0] == "create"]
    deletes = [(p, r) for p, r in zip(plan, results, strict=True) if p[0] == "delete"]
    ok = [p for p, r in creates if isinstance(r, allocations_pb2.Allocation)]
    failed = [(p, r) for p, r in creates if isinstance(r, grpc.aio.AioRpcError)]
    bad_deletes = [_describe(r) for _, r in deletes if isinstance(r, grpc.aio.AioRpcError)]
    reasons = collections.Counter(_reason(e) for _, e in failed)
    print(
        f"\n[grid 5x5] calls={len(plan)} creates={len(creates)} ok={len(ok)} "
        f"failed={len(failed)} reasons={dict(reasons)} deletes={len(deletes)} "
        f"delete_failures={len(bad_deletes)} deadlocks={deadlocks} "
        f"requested={requested} elapsed={elapsed:.2f}s"
    )
    _assert_only([e for _, e in failed], {EXCEEDS_UNALLOCATED, EXCEEDS_DUE})
    assert not bad_deletes, collections.Counter(bad_deletes)
    for (_, _, _, a), e in failed:
        if error_info(e).reason == EXCEEDS_DUE:
            _assert_exceeds_due_metadata(e, a, "300.00")
        else:
            _assert_exceeds_unallocated_metadata(e, a)
    assert deadlocks == 0, f"{deadlocks} deadlock(s) detected (retried by the edge)"

    # Every earlier allocation is reversed: only the new ones count.
    per_invoice: dict[int, Decimal] = collections.defaultdict(Decimal)
    per_txn: dict[int, Decimal] = collections.defaultdict(Decimal)
    for _, i, t, a in ok:
        per_invoice[i] += dec(a)
        per_txn[t] += dec(a)
    for i, inv in enumerate(invs):
        await _assert_invoice_sums(invoices, allocations, md, admin, tenant, inv.id, per_invoice[i])
    for t, txn in enumerate(txns):
        await _assert_transaction_sums(allocations, md, admin, tenant, txn.id, per_txn[t])
    assert sum(per_invoice.values()) == sum(per_txn.values())


# ---- 5. allocate while reversing -------------------------------------------------------


async def test_reversals_concurrent_with_new_payments(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    total = "1440.00"
    (inv,) = await _issued_invoices(invoices, md, [total])
    first, _ = await _settle([_pay(invoices, md, inv.id, "20.00") for _ in range(30)])
    assert all(isinstance(r, invoices_pb2.Invoice) for r in first), [
        _describe(r) for r in first if isinstance(r, grpc.aio.AioRpcError)
    ]
    old = await _list_allocations(allocations, md, f'invoice_id = "{inv.id}"')
    assert len(old) == 30

    rng = random.Random(55)
    amounts = [cents(rng.randint(100, 2500)) for _ in range(120)]  # 1.00 .. 25.00
    assert dec("600.00") + sum(map(dec, amounts)) > dec(total)
    tagged: list[tuple[str, Any, Awaitable[Any]]] = [
        (
            "delete",
            a,
            allocations.DeleteAllocation(
                allocations_pb2.DeleteAllocationRequest(id=a.id), metadata=md
            ),
        )
        for a in old
    ] + [("pay", a, _pay(invoices, md, inv.id, a)) for a in amounts]
    rng.shuffle(tagged)

    results, elapsed = await _settle([c for _, _, c in tagged])
    deletes = [(x, r) for (k, x, _), r in zip(tagged, results, strict=True) if k == "delete"]
    pays = [(x, r) for (k, x, _), r in zip(tagged, results, strict=True) if k == "pay"]
    ok_pays = [(a, r) for a, r in pays if isinstance(r, invoices_pb2.Invoice)]
    bad_deletes = [_describe(r) for _, r in deletes if isinstance(r, grpc.aio.AioRpcError)]
    paid = sum((dec(a) for a, _ in ok_pays), ZERO)
    print(
        f"\n[reverse+pay] calls={len(tagged)} deletes={len(deletes)} "
        f"delete_failures={len(bad_deletes)} pays={len(pays)} pay_ok={len(ok_pays)} "
        f"pay_failed={len(pays) - len(ok_pays)} paid={paid} elapsed={elapsed:.2f}s"
    )
    assert not bad_deletes, collections.Counter(bad_deletes)
    for alc, r in deletes:
        assert r.id == alc.id and r.HasField("deleted_at")
    pay_errors = [(a, r) for a, r in pays if isinstance(r, grpc.aio.AioRpcError)]
    _assert_only([e for _, e in pay_errors], {EXCEEDS_DUE})
    for a, e in pay_errors:
        _assert_exceeds_due_metadata(e, a, total)

    # Every original allocation is reversed, so only the new payments remain.
    await _assert_invoice_sums(invoices, allocations, md, admin, tenant, inv.id, paid)
    for alc in old:
        await _assert_transaction_sums(allocations, md, admin, tenant, alc.transaction_id, ZERO)
    reversed_ids = {
        a.id
        for a in await _list_allocations(
            allocations,
            md,
            f'invoice_id = "{inv.id}" AND deleted_at IS NOT NULL',
            show_deleted=True,
        )
    }
    assert reversed_ids == {a.id for a in old}


# ---- 6. idempotent PayInvoice ------------------------------------------------------------


async def test_retried_pay_invoice_with_same_request_id_pays_once(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    (inv,) = await _issued_invoices(invoices, md, ["1440.00"])
    request_id = f"pay-{uuid.uuid4()}"
    first = await _pay(invoices, md, inv.id, "100.00", request_id)
    retry = await _pay(invoices, md, inv.id, "100.00", request_id)
    assert retry == first
    assert dec(first.amount_paid) == Decimal("100.00")
    await _assert_invoice_sums(invoices, allocations, md, admin, tenant, inv.id, Decimal("100.00"))
    assert (
        await admin.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1", tenant) == 1
    )
    assert (
        await admin.fetchval("SELECT count(*) FROM transactions WHERE tenant_id = $1", tenant) == 1
    )


async def test_20_concurrent_identical_pay_invoice_requests_pay_once(
    invoices: Any, allocations: Any, md: Any, tenant: uuid.UUID, admin: asyncpg.Connection
) -> None:
    (inv,) = await _issued_invoices(invoices, md, ["1440.00"])
    request_id = f"pay-{uuid.uuid4()}"
    results, elapsed = await _settle(
        [_pay(invoices, md, inv.id, "250.00", request_id) for _ in range(20)]
    )
    errors = [_describe(r) for r in results if isinstance(r, grpc.aio.AioRpcError)]
    print(
        f"\n[same request_id] calls=20 ok={20 - len(errors)} failed={len(errors)} "
        f"elapsed={elapsed:.2f}s"
    )
    assert not errors, collections.Counter(errors)
    assert all(r == results[0] for r in results), "replays differ from the first response"
    assert dec(results[0].amount_paid) == Decimal("250.00")
    await _assert_invoice_sums(invoices, allocations, md, admin, tenant, inv.id, Decimal("250.00"))
    live = await _list_allocations(allocations, md, f'invoice_id = "{inv.id}"', show_deleted=True)
    assert len(live) == 1
    assert (
        await admin.fetchval("SELECT count(*) FROM allocations WHERE tenant_id = $1", tenant) == 1
    )
    assert (
        await admin.fetchval("SELECT count(*) FROM transactions WHERE tenant_id = $1", tenant) == 1
    )
    # A later retry still replays the same response.
    assert await _pay(invoices, md, inv.id, "250.00", request_id) == results[0]
