"""Backfill provenance from the legacy column: one `input` row per invoice whose
`source_connection_id` is set (seed 000: the junction ships beside the legacy column, which
is backfilled, then dropped; docs/provenance-migration.md).

Batched (keyset over (tenant_id, id), one short transaction per batch), idempotent (an
invoice that already has an input row for that connection, live or deleted, is skipped: a
row the pipeline deleted on purpose is not brought back) and safe to rerun at any time:
migration 0008 runs it once, and `python -m service.provenance.backfill` reruns it while
legacy writers still set the column (the expand phase). It reads every tenant's invoices,
so it runs as the migrations do, with a role that bypasses row-level security.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BATCH = 5_000
ZERO = uuid.UUID(int=0)
BY = "backfill:source_connection_id"

# $1, $2: the last (tenant_id, id) done; $3: batch size. Returns the batch's last key and
# how many rows it inserted. The new ids are UUIDv7 (the time of the backfill; the row keeps
# the invoice's created_at as when it came in).
BATCH_SQL = f"""
WITH batch AS (
    SELECT tenant_id, id, source_connection_id, created_at
    FROM invoices
    WHERE source_connection_id IS NOT NULL AND (tenant_id, id) > ($1::uuid, $2::uuid)
    ORDER BY tenant_id, id
    LIMIT $3
), inserted AS (
    INSERT INTO invoice_provenances
        (tenant_id, id, invoice_id, connection_id, direction, created_at, created_by)
    SELECT b.tenant_id,
           encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
               PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)
                   ::bigint) FROM 3) FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid,
           b.id, b.source_connection_id, 'input', b.created_at, '{BY}'
    FROM batch b
    WHERE NOT EXISTS (
        SELECT 1 FROM invoice_provenances p
        WHERE p.tenant_id = b.tenant_id AND p.invoice_id = b.id
          AND p.connection_id = b.source_connection_id AND p.direction = 'input'
    )
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT (SELECT tenant_id FROM batch ORDER BY tenant_id DESC, id DESC LIMIT 1) AS last_tenant,
       (SELECT id FROM batch ORDER BY tenant_id DESC, id DESC LIMIT 1) AS last_id,
       (SELECT count(*) FROM batch) AS scanned,
       (SELECT count(*) FROM inserted) AS inserted
"""

# Invoices whose legacy column has no provenance row yet (the contract step's check).
MISSING_SQL = """
SELECT count(*) FROM invoices i
WHERE i.source_connection_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM invoice_provenances p
    WHERE p.tenant_id = i.tenant_id AND p.invoice_id = i.id
      AND p.connection_id = i.source_connection_id AND p.direction = 'input'
)
"""


@dataclass
class Report:
    scanned: int = 0
    inserted: int = 0
    batches: int = 0
    seconds: float = 0.0


def run(execute: Callable[[str, tuple[Any, ...]], Any], *, batch: int = BATCH) -> Report:
    """Drive the batches with `execute(sql, params) -> row`, each call its own transaction
    (the migration's autocommit connection)."""
    report, after, started = Report(), (ZERO, ZERO), time.perf_counter()
    while True:
        row = execute(BATCH_SQL, (*after, batch))
        if not row or not row[2]:
            break
        report.batches += 1
        report.scanned += row[2]
        report.inserted += row[3]
        after = (row[0], row[1])
    report.seconds = time.perf_counter() - started
    return report


async def run_async(conn: Any, *, batch: int = BATCH) -> Report:
    """The same over asyncpg (the command line)."""
    report, after, started = Report(), (ZERO, ZERO), time.perf_counter()
    while True:
        row = await conn.fetchrow(BATCH_SQL, *after, batch)
        if not row or not row["scanned"]:
            break
        report.batches += 1
        report.scanned += row["scanned"]
        report.inserted += row["inserted"]
        after = (row["last_tenant"], row["last_id"])
    report.seconds = time.perf_counter() - started
    return report


async def _main(batch: int) -> None:
    import asyncpg

    from service.kit import config, db, devdb

    urls = devdb.resolve(config.load())
    conn = await asyncpg.connect(db.plain_url(urls.admin))
    try:
        bypass = await conn.fetchval(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        if not bypass:
            raise SystemExit("the backfill reads every tenant: use a role with BYPASSRLS")
        await conn.execute("SET row_security = off")
        report = await run_async(conn, batch=batch)
        missing = await conn.fetchval(MISSING_SQL)
    finally:
        await conn.close()
    print(
        f"scanned {report.scanned} invoices with a source connection in {report.batches} "
        f"batches, inserted {report.inserted} provenance rows in {report.seconds:.2f} s; "
        f"{missing} still without one"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=BATCH)
    asyncio.run(_main(parser.parse_args().batch))


if __name__ == "__main__":
    main()
