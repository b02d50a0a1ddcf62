"""Seed a realistic data set straight into PostgreSQL (as the owner, in batches).

Invoices: one "big" tenant holds just over half of them (so page 10,000 of its list
exists), the rest spread over the other tenants; 1-20 line items each, 90 % issued,
10 % drafts (the IssueInvoice scenario issues those). Totals follow the service's
rounding model, so every seeded row is one the service could have written.

Allocations: every third issued invoice (g / 10 % 3 = 0, g the invoice's sequence
number: blocks of ten, so every tenant gets its third) was paid by one transaction (the
invoice's direction, currency and counterparty) allocated to it in full: an even g pays
the whole total (payment status `paid`, `paid_at` set), an odd g half of it
(`partially_paid`). Every seeded invoice is in EUR and no tenant
has workspace settings, so the accounting currency is the default EUR: no exchange rate
is involved and invoice, transaction and accounting amounts are equal, as the service
would have written them. The rows are inserted by the same statement as their invoice.
"""

from __future__ import annotations

import time
import uuid

import asyncpg

BIG_SHARE = 0.52
BATCH = 50_000
# Bump when the seeded data changes: a database seeded by another version is seeded again.
# The version is the seeded transactions' bank reference (v1 had no allocations).
SEED_VERSION = 2
SEED_REFERENCE = f"bench seed v{SEED_VERSION}"

# `txn_` + the Crockford base32 of the id, as `service.ids.encode_id` writes it (two zero
# bits and the 128 bits, 26 groups of 5), for the allocation's summary line.
_TXN_LABEL = """'txn_' || (
    SELECT string_agg(
        substr('0123456789ABCDEFGHJKMNPQRSTVWXYZ', 1 + substring(b FROM 1 + 5 * k FOR 5)::int, 1),
        '' ORDER BY k)
    FROM (SELECT B'00' || ('x' || replace(pay.txn_id::text, '-', ''))::bit(128) AS b) bits,
         generate_series(0, 25) AS k
)"""

_INSERT = f"""
WITH inv AS (
INSERT INTO invoices (
    tenant_id, id, type, direction, status, number, counterparty_id, issue_date, due_date,
    currency, subtotal, tax_amount, discount_amount, total, amount_paid, payment_status,
    paid_at, line_items, tax_breakdown, tags, issued_at, created_at, updated_at,
    created_by, updated_by
)
SELECT
    CASE WHEN g <= $3 THEN $4::uuid ELSE ($5::uuid[])[1 + (g % array_length($5::uuid[], 1))] END,
    uuidv7(),
    'customer', 'receivable',
    CASE WHEN g % 10 = 0 THEN 'draft' ELSE 'issued' END,
    CASE WHEN g % 10 = 0 THEN NULL ELSE 'SEED-2026-' || g END,
    md5('cp' || (g % 5000))::uuid,
    DATE '2026-01-01' + (g % 300)::int,
    DATE '2026-01-01' + (g % 300)::int + 30,
    'EUR', li.subtotal, li.tax, 0, li.subtotal + li.tax,
    CASE WHEN NOT pay.paid THEN 0
         WHEN pay.full THEN li.subtotal + li.tax
         ELSE round((li.subtotal + li.tax) / 2, 2) END,
    CASE WHEN NOT pay.paid THEN 'unpaid' WHEN pay.full THEN 'paid' ELSE 'partially_paid' END,
    CASE WHEN pay.full THEN pay.at END,
    li.items,
    jsonb_build_array(jsonb_build_object(
        'tax_rate', '0.2', 'taxable_amount', li.subtotal::text, 'tax_amount', li.tax::text)),
    CASE WHEN g % 7 = 0 THEN ARRAY['urgent'] ELSE ARRAY[]::text[] END,
    CASE WHEN g % 10 = 0 THEN NULL ELSE now() END,
    pay.created,
    CASE WHEN pay.paid THEN pay.at ELSE pay.created END,
    'seed', 'seed'
FROM generate_series($1::bigint, $6::bigint) AS g
CROSS JOIN LATERAL (
    SELECT
        sum(q * p) AS subtotal,
        sum(round(q * p * 0.2, 2)) AS tax,
        jsonb_agg(jsonb_build_object(
            'description', 'Item ' || i, 'quantity', q::text, 'unit_price', p::text,
            'tax_rate', '0.2', 'discount_amount', '0.00',
            'subtotal', (q * p)::text, 'amount', (q * p)::text,
            'tax_amount', round(q * p * 0.2, 2)::text) ORDER BY i) AS items
    FROM (
        SELECT i, (1 + (g + i) % 5)::numeric AS q, (10.00 * (1 + (g * i) % 7))::numeric(12, 2) AS p
        FROM generate_series(1, 1 + (g % 20)::int) AS i
    ) lines
) li
CROSS JOIN LATERAL (
    SELECT
        g / 10 % 3 = 0 AND g % 10 <> 0 AS paid,
        g / 10 % 3 = 0 AND g % 10 <> 0 AND g % 2 = 0 AS full,
        now() - make_interval(secs => ($2 - g)) AS created,
        -- paid halfway between creation and now
        now() - make_interval(secs => ($2 - g) / 2.0) AS at
) pay
RETURNING tenant_id, id, direction, number, counterparty_id, currency, amount_paid,
    payment_status, updated_at
),
pay AS (
    SELECT inv.*, uuidv7() AS txn_id, uuidv7() AS alc_id FROM inv WHERE amount_paid > 0
),
txn AS (
    INSERT INTO transactions (
        tenant_id, id, direction, amount, currency, allocated_amount, value_date,
        reference, counterparty_id, created_at, updated_at, created_by, updated_by
    )
    SELECT tenant_id, txn_id, direction, amount_paid, currency, amount_paid,
        (updated_at AT TIME ZONE 'UTC')::date, $7, counterparty_id, updated_at, updated_at,
        'seed', 'seed'
    FROM pay
)
INSERT INTO allocations (
    tenant_id, id, invoice_id, transaction_id, amount, currency, invoice_amount,
    invoice_currency, accounting_amount, accounting_currency, allocation_type,
    composite_invoice_transaction_summary, created_at, updated_at, created_by, updated_by
)
SELECT
    tenant_id, alc_id, id, txn_id, amount_paid, currency, amount_paid, currency, amount_paid,
    'EUR', CASE WHEN payment_status = 'paid' THEN 'full' ELSE 'partial' END,
    number || ' <- ' || {_TXN_LABEL} || ' ' || round(amount_paid, 2)::text || ' ' || currency
        || CASE WHEN payment_status = 'paid' THEN ' (full)' ELSE ' (partial)' END,
    updated_at, updated_at, 'seed', 'seed'
FROM pay
"""

# Payments made by earlier runs (PayInvoice): the invoices they touched get back the
# payment state of their seeded allocation (or none).
_RESTORE_PAID = """
UPDATE invoices i SET
    amount_paid = s.paid,
    payment_status = CASE WHEN s.paid = 0 THEN 'unpaid'
                          WHEN s.paid >= i.total THEN 'paid' ELSE 'partially_paid' END,
    paid_at = CASE WHEN s.paid >= i.total THEN s.paid_at END
FROM (
    SELECT tenant_id, invoice_id,
        coalesce(sum(invoice_amount) FILTER (
            WHERE created_by = 'seed' AND deleted_at IS NULL), 0) AS paid,
        max(created_at) FILTER (WHERE created_by = 'seed') AS paid_at
    FROM allocations
    GROUP BY tenant_id, invoice_id
    HAVING bool_or(created_by <> 'seed')
) s
WHERE i.tenant_id = s.tenant_id AND i.id = s.invoice_id
"""


def tenants(count: int) -> list[uuid.UUID]:
    """Deterministic tenant ids, so a rerun finds the data it seeded."""
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"bench-tenant-{i}") for i in range(count)]


def expected_allocations(invoices: int) -> int:
    """Seeded allocations for `invoices` seeded invoices (the `paid` rule of `_INSERT`)."""
    return sum(1 for g in range(1, invoices + 1) if g // 10 % 3 == 0 and g % 10 != 0)


async def forget_previous_runs(dsn: str) -> None:
    """Drop what earlier benchmark runs wrote, so every run starts from the seed."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(_RESTORE_PAID)
            await conn.execute("DELETE FROM allocations WHERE created_by <> 'seed'")
            await conn.execute("DELETE FROM transactions WHERE created_by <> 'seed'")
        # What the ingestion rows wrote: provenance, deliveries, webhook events, then the
        # invoices (children of aggregation parents first).
        await conn.execute("DELETE FROM invoice_provenances")
        await conn.execute("DELETE FROM invoice_deliveries")
        await conn.execute("DELETE FROM webhook_events")
        await conn.execute("UPDATE invoices SET parent_id = NULL WHERE parent_id IS NOT NULL")
        await conn.execute("DELETE FROM invoices WHERE created_by <> 'seed'")
        await conn.execute("DELETE FROM idempotency_keys")
        # Seeded drafts that an IssueInvoice run issued become drafts again.
        await conn.execute(
            "UPDATE invoices SET status = 'draft', number = NULL, issued_at = NULL,"
            " project_sequence_id = NULL WHERE created_by = 'seed' AND status = 'issued'"
            " AND number NOT LIKE 'SEED-%'"
        )
        await conn.execute("DELETE FROM invoice_number_counters")
    finally:
        await conn.close()


async def is_seeded(dsn: str, invoices: int) -> bool:
    """The database holds this seed: `invoices` seeded invoices and their allocations,
    paid by transactions of this seed version (else everything is seeded again)."""
    conn = await asyncpg.connect(dsn)
    try:
        count = await conn.fetchval("SELECT count(*) FROM invoices WHERE created_by = 'seed'")
        paid = await conn.fetchval("SELECT count(*) FROM allocations WHERE created_by = 'seed'")
        current = await conn.fetchval(
            "SELECT count(*) FROM transactions WHERE created_by = 'seed' AND reference = $1",
            SEED_REFERENCE,
        )
    finally:
        await conn.close()
    expected = expected_allocations(invoices)
    return count == invoices and paid == expected and current == expected


async def seed(dsn: str, *, invoices: int, tenant_count: int, log: object = print) -> float:
    """Insert `invoices` rows and their allocations; returns the seconds it took."""
    ts = tenants(tenant_count)
    big_rows = int(invoices * BIG_SHARE)
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        # The bench database holds only what the bench wrote: every payment goes.
        await conn.execute("TRUNCATE allocations, transactions")
        await conn.execute("DELETE FROM invoices WHERE created_by = 'seed'")
        for start in range(1, invoices + 1, BATCH):
            end = min(start + BATCH - 1, invoices)
            await conn.execute(
                _INSERT, start, invoices, big_rows, ts[0], ts[1:], end, SEED_REFERENCE
            )
            log(f"  seeded {end:,}/{invoices:,} invoices")  # type: ignore[operator]
        await conn.execute("ANALYZE invoices, transactions, allocations")
    finally:
        await conn.close()
    return time.perf_counter() - started
