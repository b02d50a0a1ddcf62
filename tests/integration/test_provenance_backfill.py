"""The legacy column's backfill (migration 0008) on 100,000 invoices written the legacy way
before it ran: rows, idempotence, reruns, what it leaves alone, its timing; and the plan of
ListInvoices' provenance filter on that data.

Runs on a fresh database migrated to 0007 (the expand step), seeded with SQL as the legacy
writer would have left it, then upgraded to head.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from service import migrate
from service.invoices.queries import INVOICES
from service.kit import auth, listing
from service.kit.filtering import compile_filter
from service.kit.pagination import CursorCodec
from service.provenance import backfill
from tests.conftest import APP_ROLE
from tests.integration.test_migrations import fresh_url  # noqa: F401 (fixture)

INVOICES_N = 100_000
TENANTS = 100


async def _upgrade(url: str, revision: str) -> float:
    started = time.perf_counter()
    await asyncio.to_thread(migrate.upgrade, url, app_role=APP_ROLE, revision=revision)
    return time.perf_counter() - started


async def _seed_legacy(conn: asyncpg.Connection) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    """100 tenants, one yooz connection each; 100,000 invoices of which 90 % carry the
    legacy `source_connection_id` (as the legacy writer set it), spread over the tenants."""
    tenants = [uuid.uuid4() for _ in range(TENANTS)]
    connections = [uuid.uuid4() for _ in range(TENANTS)]
    await conn.executemany(
        "INSERT INTO connections (tenant_id, id, provider, created_by, updated_by)"
        " VALUES ($1, $2, 'yooz', 'legacy', 'legacy')",
        list(zip(tenants, connections, strict=True)),
    )
    await conn.execute(
        """
        INSERT INTO invoices (tenant_id, id, type, direction, currency, subtotal, tax_amount,
            discount_amount, total, created_by, updated_by, source_connection_id, created_at)
        SELECT t.tenant, gen_random_uuid(), 'customer', 'receivable', 'EUR', 0, 0, 0, 0,
            'legacy', 'legacy', CASE WHEN g % 10 = 0 THEN NULL ELSE t.connection END,
            now() - make_interval(secs => g)
        FROM generate_series(1, $3::int) AS g
        CROSS JOIN LATERAL (
            SELECT ($1::uuid[])[1 + g % $4] AS tenant, ($2::uuid[])[1 + g % $4] AS connection
        ) t
        """,
        tenants,
        connections,
        INVOICES_N,
        TENANTS,
    )
    return tenants, connections


async def test_backfill_of_100000_legacy_invoices(fresh_url: str) -> None:  # noqa: F811
    await _upgrade(fresh_url, "0007")
    conn = await asyncpg.connect(fresh_url)
    try:
        tenants, connections = await _seed_legacy(conn)
        with_source = await conn.fetchval(
            "SELECT count(*) FROM invoices WHERE source_connection_id IS NOT NULL"
        )
        assert with_source == INVOICES_N * 9 // 10
        # The pipeline already recorded one of them, and deleted another's on purpose.
        recorded, removed = await conn.fetch(
            "SELECT tenant_id, id, source_connection_id FROM invoices"
            " WHERE source_connection_id IS NOT NULL ORDER BY id LIMIT 2"
        )
        for row, deleted in ((recorded, None), (removed, "now()")):
            await conn.execute(
                "INSERT INTO invoice_provenances (tenant_id, id, invoice_id, connection_id,"
                f" direction, created_by, deleted_at) VALUES ($1, $2, $3, $4, 'input', 'pipeline',"
                f" {deleted or 'NULL'})",
                row["tenant_id"],
                uuid.uuid4(),
                row["id"],
                row["source_connection_id"],
            )

        seconds = await _upgrade(fresh_url, "head")

        backfilled = await conn.fetchval(
            "SELECT count(*) FROM invoice_provenances WHERE created_by = $1", backfill.BY
        )
        assert backfilled == with_source - 2
        assert await conn.fetchval(backfill.MISSING_SQL) == 0
        # Each backfilled row is the invoice's input from its own tenant's connection,
        # stamped with when the invoice came in.
        mismatched = await conn.fetchval(
            """
            SELECT count(*) FROM invoice_provenances p JOIN invoices i
              ON i.tenant_id = p.tenant_id AND i.id = p.invoice_id
            WHERE p.created_by = $1 AND (p.connection_id <> i.source_connection_id
              OR p.direction <> 'input' OR p.created_at <> i.created_at OR p.deleted_at IS NOT NULL
              OR p.updated_at IS NOT NULL)
            """,
            backfill.BY,
        )
        assert mismatched == 0
        # The deliberately deleted row was not brought back; the recorded one not doubled.
        for row in (recorded, removed):
            assert (
                await conn.fetchval(
                    "SELECT count(*) FROM invoice_provenances WHERE invoice_id = $1", row["id"]
                )
                == 1
            )
        # Ids are UUIDv7.
        versions = await conn.fetch(
            "SELECT DISTINCT substr(id::text, 15, 1) AS v FROM invoice_provenances"
            " WHERE created_by = $1",
            backfill.BY,
        )
        assert [r["v"] for r in versions] == ["7"]

        # Rerun: nothing new. A legacy writer still setting the column: picked up by a rerun.
        await conn.execute("SET row_security = off")
        again = await backfill.run_async(conn, batch=7_000)
        assert (again.scanned, again.inserted) == (with_source, 0)
        await conn.execute(
            "INSERT INTO invoices (tenant_id, id, type, direction, currency, subtotal,"
            " tax_amount, discount_amount, total, created_by, updated_by, source_connection_id)"
            " VALUES ($1, $2, 'customer', 'receivable', 'EUR', 0, 0, 0, 0, 'legacy', 'legacy', $3)",
            tenants[3],
            uuid.uuid4(),
            connections[3],
        )
        late = await backfill.run_async(conn)
        assert late.inserted == 1
        assert await conn.fetchval(backfill.MISSING_SQL) == 0

        plan = await _list_plan(conn, tenants[7], connections[7])
        print(
            f"\nbackfill: {backfilled:,} provenance rows from {INVOICES_N:,} invoices "
            f"({with_source:,} with a source) in {seconds:.2f} s (migration 0008 incl. "
            f"Alembic start); rerun scanned {again.scanned:,} in {again.seconds:.2f} s\n"
            f"ListInvoices input_connection_id plan:\n{plan}"
        )
        assert "ix_invoice_provenances_connection" in plan or "uq_invoice_provenances_live" in plan
        assert "Seq Scan on invoices" not in plan

        # Downgrade removes only what the backfill wrote.
        await _downgrade(fresh_url, "0007")
        left = await conn.fetch("SELECT created_by FROM invoice_provenances")
        assert sorted(r["created_by"] for r in left) == ["pipeline", "pipeline"]
    finally:
        await conn.close()


async def _downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(migrate.downgrade, url, app_role=APP_ROLE, revision=revision)


class _Recording:
    """The connection list_page runs on, keeping the statements it sent."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.sent: list[tuple[str, Sequence[Any]]] = []

    async def fetch(self, query: str, *args: Any) -> Any:
        self.sent.append((query, args))
        return await self.conn.fetch(query, *args)


async def _list_plan(conn: asyncpg.Connection, tenant: uuid.UUID, connection: uuid.UUID) -> str:
    """EXPLAIN ANALYZE of the statement ListInvoices sends for
    `input_connection_id = "con_…"`, as the service compiles it."""
    from service.kit import ids

    await conn.execute("ANALYZE")
    public = ids.encode_id(ids.PREFIXES["connection"], connection)
    text = f'input_connection_id = "{public}"'
    query = listing.Query(
        limit=50,
        filter_key=f"aip160:{text}",
        condition=lambda: compile_filter(text, INVOICES.filter_fields),
    )
    principal = auth.Principal("plan", tenant, None, frozenset(), frozenset())
    recording = _Recording(conn)
    page = await listing.list_page(recording, principal, INVOICES, query, CursorCodec(b"x" * 32))  # type: ignore[arg-type]
    assert len(page.items) == 50  # all 1,000 of this tenant's invoices came in through it
    [(statement, args)] = recording.sent
    rows = await conn.fetch(f"EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {statement}", *args)
    return "\n".join(r[0] for r in rows)
