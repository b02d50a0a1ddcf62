"""The peer: GetInvoice and ListInvoices as a team would write them by default.

A grpc.aio servicer, SQLAlchemy's `AsyncSession` over declarative ORM models (asyncpg
underneath, pool of 10), and json_format-style conversion (the ORM object as a dict,
`json_format.ParseDict` into the message). Same data, same process count and loop
(uvloop) as the floor and the service; like the floor it has no auth, no RLS and no
validation, so the comparison flatters the peer.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import grpc
from google.protobuf import json_format
from invoicing.v1 import invoices_pb2 as pb
from invoicing.v1 import invoices_pb2_grpc
from sqlalchemy import Numeric, Text, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from service.kit import ids


class Base(DeclarativeBase):
    pass


class Invoice(Base):
    __tablename__ = "invoices"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    number: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    counterparty_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    issue_date: Mapped[date | None]
    due_date: Mapped[date | None]
    currency: Mapped[str] = mapped_column(Text)
    subtotal: Mapped[Decimal] = mapped_column(Numeric(24, 4))
    tax_amount: Mapped[Decimal] = mapped_column(Numeric(24, 4))
    discount_amount: Mapped[Decimal] = mapped_column(Numeric(24, 4))
    total: Mapped[Decimal] = mapped_column(Numeric(24, 4))
    amount_paid: Mapped[Decimal] = mapped_column(Numeric(24, 4))
    payment_status: Mapped[str] = mapped_column(Text)
    line_items: Mapped[list[dict[str, str]]] = mapped_column(JSONB)
    notes: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text))
    source: Mapped[str] = mapped_column(Text)
    version: Mapped[int]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime | None]


def to_dict(row: Invoice) -> dict[str, Any]:
    """The row as the message's JSON (what a team writes once, then maps every field)."""
    due = row.total - row.amount_paid
    return {
        "id": ids.encode_id("inv", row.id),
        "tenantId": str(row.tenant_id),
        "number": row.number or "",
        "type": f"INVOICE_TYPE_{row.type.upper()}",
        "direction": f"INVOICE_DIRECTION_{row.direction.upper()}",
        "status": f"INVOICE_STATUS_{row.status.upper()}",
        "counterpartyId": str(row.counterparty_id or ""),
        "issueDate": _date(row.issue_date),
        "dueDate": _date(row.due_date),
        "currency": row.currency,
        "subtotal": str(row.subtotal),
        "taxAmount": str(row.tax_amount),
        "discountAmount": str(row.discount_amount),
        "total": str(row.total),
        "amount": str(row.total),
        "amountPaid": str(row.amount_paid),
        "amountDue": str(due),
        "paymentStatus": f"PAYMENT_STATUS_{row.payment_status.upper()}",
        "lineItems": row.line_items,
        "notes": row.notes,
        "tags": row.tags,
        "source": row.source,
        "createdAt": row.created_at.isoformat(),
        "updatedAt": row.updated_at.isoformat(),
        "createdBy": row.created_by,
        "updatedBy": row.updated_by,
        "etag": f'W/"{row.version}"',
    }


def _date(value: date | None) -> dict[str, int] | None:
    if value is None:
        return None
    return {"year": value.year, "month": value.month, "day": value.day}


def to_pb(row: Invoice) -> pb.Invoice:
    data = {k: v for k, v in to_dict(row).items() if v is not None}
    return json_format.ParseDict(data, pb.Invoice(), ignore_unknown_fields=True)


class PeerServicer(invoices_pb2_grpc.InvoiceServiceServicer):
    def __init__(self, sessions: async_sessionmaker[Any], tenant: uuid.UUID) -> None:
        self.sessions = sessions
        self.tenant = tenant

    async def GetInvoice(self, request: pb.GetInvoiceRequest, context: Any) -> pb.Invoice:
        invoice_id = ids.decode_id(request.id, "inv", "id")
        async with self.sessions() as session:
            row = await session.get(Invoice, (self.tenant, invoice_id))
        if row is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "not found")
        return to_pb(row)

    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: Any
    ) -> pb.ListInvoicesResponse:
        limit = request.limit or 50
        query = (
            select(Invoice)
            .where(Invoice.tenant_id == self.tenant, Invoice.deleted_at.is_(None))
            .order_by(Invoice.created_at.desc(), Invoice.id.desc())
            .limit(limit + 1)
        )
        async with self.sessions() as session:
            rows = (await session.scalars(query)).all()
        return pb.ListInvoicesResponse(data=[to_pb(r) for r in rows[:limit]], next_cursor="x")


async def serve(dsn: str, port: int, tenant: uuid.UUID, pool_size: int) -> None:
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    invoices_pb2_grpc.add_InvoiceServiceServicer_to_server(PeerServicer(sessions, tenant), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"peer ready on {bound}", flush=True)
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
