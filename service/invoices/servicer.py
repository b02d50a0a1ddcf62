"""InvoiceService over gRPC: decode, call one use case, encode. Never decides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from invoicing.v1 import invoices_pb2 as pb
from invoicing.v1 import invoices_pb2_grpc

from service.allocations import convert as allocation_convert
from service.allocations import service as allocations
from service.edge.calls import Edge
from service.invoices import convert, rules, service
from service.invoices.queries import INVOICES
from service.kit import auth, db, listing
from service.kit.auth import Principal

SERVICE = pb.DESCRIPTOR.services_by_name["InvoiceService"].full_name
PERMISSIONS = {
    f"/{SERVICE}/{name}": "invoices.read" if name.startswith(("Get", "List")) else "invoices.write"
    for name in pb.DESCRIPTOR.services_by_name["InvoiceService"].methods_by_name
}
Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
UseCase: TypeAlias = Callable[[db.Conn, Principal], Awaitable[rules.Invoice]]


class InvoiceServicer(invoices_pb2_grpc.InvoiceServiceServicer):
    def __init__(self, edge: Edge, deps: service.Deps, allocation_deps: allocations.Deps) -> None:
        self._edge = edge
        self._deps = deps
        self._allocation_deps = allocation_deps

    def _pb(self, invoice: rules.Invoice) -> pb.Invoice:
        return convert.invoice_to_pb(invoice, today=self._deps.today())

    async def _call(self, use_case: UseCase, *, single_statement: bool = False) -> pb.Invoice:
        principal = auth.current()

        async def work(conn: db.Conn) -> pb.Invoice:
            return self._pb(await use_case(conn, principal))

        if single_statement:
            return await self._edge.read_one(principal, work)
        return await self._edge.run(principal, work)

    async def _idempotent(self, method: str, request: Any, use_case: UseCase) -> pb.Invoice:
        principal = auth.current()

        async def work(conn: db.Conn) -> pb.Invoice:
            return self._pb(await use_case(conn, principal))

        return await self._edge.run_idempotent(
            principal,
            method=method,
            request=request,
            request_id=request.request_id,
            response_type=pb.Invoice,
            work=work,
        )

    async def CreateInvoice(self, request: pb.CreateInvoiceRequest, context: Ctx) -> pb.Invoice:
        draft, claimed = convert.draft_for_create(request.invoice)
        return await self._idempotent(
            "CreateInvoice",
            request,
            lambda conn, p: service.create_invoice(conn, p, draft=draft, claimed=claimed),
        )

    async def GetInvoice(self, request: pb.GetInvoiceRequest, context: Ctx) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)
        return await self._call(
            lambda conn, p: service.get_invoice(conn, p, invoice_id=invoice_id),
            single_statement=True,
        )

    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: Ctx
    ) -> pb.ListInvoicesResponse:
        principal = auth.current()
        query = listing.query_from_request(request, INVOICES)

        async def work(conn: db.Conn) -> pb.ListInvoicesResponse:
            page = await service.list_invoices(conn, principal, query=query, deps=self._deps)
            return pb.ListInvoicesResponse(
                data=[self._pb(item) for item in page.items],
                next_cursor=page.next_cursor,
                total=page.total,
            )

        return await self._edge.run(principal, work)

    async def UpdateInvoice(self, request: pb.UpdateInvoiceRequest, context: Ctx) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.invoice.id, "invoice.id")

        async def use_case(conn: db.Conn, p: Principal) -> rules.Invoice:
            current = await service.get_invoice(conn, p, invoice_id=invoice_id)
            changes, claimed = convert.changes_for_update(
                request.invoice,
                request.update_mask.paths,
                request.HasField("update_mask"),
                current=current.draft,
            )
            return await service.update_invoice(
                conn,
                p,
                invoice_id=invoice_id,
                changes=changes,
                claimed=claimed,
                etag=request.invoice.etag,
            )

        return await self._call(use_case)

    async def DeleteInvoice(self, request: pb.DeleteInvoiceRequest, context: Ctx) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)
        return await self._call(
            lambda conn, p: service.delete_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag
            )
        )

    async def UndeleteInvoice(self, request: pb.UndeleteInvoiceRequest, context: Ctx) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)
        return await self._idempotent(
            "UndeleteInvoice",
            request,
            lambda conn, p: service.undelete_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag
            ),
        )

    async def IssueInvoice(self, request: pb.IssueInvoiceRequest, context: Ctx) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)
        return await self._idempotent(
            "IssueInvoice",
            request,
            lambda conn, p: service.issue_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag, deps=self._deps
            ),
        )

    async def VoidInvoice(self, request: pb.VoidInvoiceRequest, context: Ctx) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)
        reason = convert.text(request.reason, "reason", max_length=1000)
        return await self._idempotent(
            "VoidInvoice",
            request,
            lambda conn, p: service.void_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag, reason=reason
            ),
        )

    async def PayInvoice(self, request: pb.PayInvoiceRequest, context: Ctx) -> pb.Invoice:
        payment = allocation_convert.payment(request)
        return await self._idempotent(
            "PayInvoice",
            request,
            lambda conn, p: allocations.pay_invoice(
                conn, p, payment=payment, deps=self._allocation_deps
            ),
        )
