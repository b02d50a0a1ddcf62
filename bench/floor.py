"""The floor: a minimal grpc.aio InvoiceService doing the same primary-key select
(and the same keyset page) with raw asyncpg, returning a comparable message.

No auth, no RLS, no transaction, no validation beyond what a crash needs: it is what
the raw building blocks cost, measured on the same loop and process count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid
from typing import Any

import asyncpg
import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from invoicing.v1 import invoices_pb2 as pb
from invoicing.v1 import invoices_pb2_grpc

from service.kit import ids

COLUMNS = (
    "tenant_id, id, number, status, currency, counterparty_id, subtotal, tax_amount, "
    "discount_amount, total, amount_paid, line_items, notes, tags, created_at, updated_at, "
    "created_by, updated_by, version"
)
GET = f"SELECT {COLUMNS} FROM invoices WHERE tenant_id = $1 AND id = $2"
PAGE = (
    f"SELECT {COLUMNS} FROM invoices WHERE tenant_id = $1 AND deleted_at IS NULL "
    "ORDER BY created_at DESC, id DESC LIMIT $2"
)


def _ts(value: Any) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def to_pb(row: asyncpg.Record) -> pb.Invoice:
    total = str(row["total"])
    return pb.Invoice(
        id=ids.encode_id("inv", row["id"]),
        tenant_id=str(row["tenant_id"]),
        number=row["number"] or "",
        type=pb.INVOICE_TYPE_CUSTOMER,
        direction=pb.INVOICE_DIRECTION_RECEIVABLE,
        status=pb.INVOICE_STATUS_ISSUED if row["status"] == "issued" else pb.INVOICE_STATUS_DRAFT,
        counterparty_id=str(row["counterparty_id"]),
        currency=row["currency"],
        subtotal=str(row["subtotal"]),
        tax_amount=str(row["tax_amount"]),
        discount_amount=str(row["discount_amount"]),
        total=total,
        amount=total,
        amount_paid=str(row["amount_paid"]),
        line_items=[pb.LineItem(**item) for item in json.loads(row["line_items"])],
        notes=row["notes"],
        tags=row["tags"],
        created_at=_ts(row["created_at"]),
        updated_at=_ts(row["updated_at"]),
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        etag=f'W/"{row["version"]}"',
    )


class FloorServicer(invoices_pb2_grpc.InvoiceServiceServicer):
    def __init__(self, pool: asyncpg.Pool, tenant: uuid.UUID) -> None:
        self.pool = pool
        self.tenant = tenant

    async def GetInvoice(self, request: pb.GetInvoiceRequest, context: Any) -> pb.Invoice:
        invoice_id = ids.decode_id(request.id, "inv", "id")
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(GET, self.tenant, invoice_id)
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "not found")
        return to_pb(row)

    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: Any
    ) -> pb.ListInvoicesResponse:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(PAGE, self.tenant, (request.limit or 50) + 1)
        return pb.ListInvoicesResponse(data=[to_pb(r) for r in rows[:-1]], next_cursor="x")


async def _noop_reset(conn: asyncpg.Connection) -> None:
    return None


async def serve(dsn: str, port: int, tenant: uuid.UUID, pool_size: int) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=pool_size, max_size=pool_size, reset=_noop_reset)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    invoices_pb2_grpc.add_InvoiceServiceServicer_to_server(FloorServicer(pool, tenant), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"floor ready on {bound}", flush=True)
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tenant", type=uuid.UUID, required=True)
    parser.add_argument("--pool-size", type=int, default=10)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    coro = serve(args.dsn, args.port, args.tenant, args.pool_size)
    if args.uvloop:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


if __name__ == "__main__":
    main()
