"""Seed a realistic data set straight into PostgreSQL (as the owner, in batches).

Invoices: one "big" tenant holds just over half of them (so page 10,000 of its list
exists), the rest spread over the other tenants; 1-20 line items each, 90 % issued,
10 % drafts (the IssueInvoice scenario issues those). Totals follow the service's
rounding model, so every seeded row is one the service could have written.
"""

from __future__ import annotations

import time
import uuid

import asyncpg

BIG_SHARE = 0.52
BATCH = 50_000

_INSERT = """
INSERT INTO invoices (
    tenant_id, id, type, direction, status, number, counterparty_id, issue_date, due_date,
    currency, subtotal, tax_amount, discount_amount, total, line_items, tax_breakdown,
    tags, issued_at, created_at, updated_at, created_by, updated_by
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
    li.items,
    jsonb_build_array(jsonb_build_object(
        'tax_rate', '0.2', 'taxable_amount', li.subtotal::text, 'tax_amount', li.tax::text)),
    CASE WHEN g % 7 = 0 THEN ARRAY['urgent'] ELSE ARRAY[]::text[] END,
    CASE WHEN g % 10 = 0 THEN NULL ELSE now() END,
    now() - make_interval(secs => ($2 - g)),
    now() - make_interval(secs => ($2 - g)),
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
"""


def tenants(count: int) -> list[uuid.UUID]:
    """Deterministic tenant ids, so a rerun finds the data it seeded."""
    return [uuid.uuid5(uuid.NAMESPACE_URL, f"bench-tenant-{i}") for i in range(count)]


async def forget_previous_runs(dsn: str) -> None:
    """Drop what earlier benchmark runs wrote, so every run starts from the seed."""
    conn = await asyncpg.connect(dsn)
    try:
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


async def seeded_count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM invoices WHERE created_by = 'seed'"))
    finally:
        await conn.close()


async def seed(dsn: str, *, invoices: int, tenant_count: int, log: object = print) -> float:
    """Insert `invoices` rows; returns the seconds it took."""
    ts = tenants(tenant_count)
    big_rows = int(invoices * BIG_SHARE)
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM invoices WHERE created_by = 'seed'")
        for start in range(1, invoices + 1, BATCH):
            end = min(start + BATCH - 1, invoices)
            await conn.execute(_INSERT, start, invoices, big_rows, ts[0], ts[1:], end)
            log(f"  seeded {end:,}/{invoices:,} invoices")  # type: ignore[operator]
        await conn.execute("ANALYZE invoices")
    finally:
        await conn.close()
    return time.perf_counter() - started
