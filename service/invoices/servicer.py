"""InvoiceService over gRPC: decode, call one use case, encode. Never decides."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from invoicing.v1 import invoices_pb2 as pb
from invoicing.v1 import invoices_pb2_grpc

from service import auth, errors
from service.invoices import convert, service
from service.rpc import Edge

SERVICE = pb.DESCRIPTOR.services_by_name["InvoiceService"].full_name
PERMISSIONS = {
    f"/{SERVICE}/{name}": "invoices.read" if name.startswith(("Get", "List")) else "invoices.write"
    for name in pb.DESCRIPTOR.services_by_name["InvoiceService"].methods_by_name
}
Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class InvoiceServicer(invoices_pb2_grpc.InvoiceServiceServicer):
    def __init__(self, edge: Edge, deps: service.Deps) -> None:
        self._edge = edge
        self._deps = deps

    def _pb(self, invoice: Any) -> pb.Invoice:
        return convert.invoice_to_pb(invoice, today=self._deps.today())

    async def CreateInvoice(self, request: pb.CreateInvoiceRequest, context: Ctx) -> pb.Invoice:
        principal = auth.current()
        draft, claimed = convert.draft_for_create(request.invoice)

        async def work(conn: Any) -> pb.Invoice:
            invoice = await service.create_invoice(conn, principal, draft=draft, claimed=claimed)
            return self._pb(invoice)

        return await self._edge.run_idempotent(
            principal,
            method="CreateInvoice",
            request=request,
            request_id=request.request_id,
            response_type=pb.Invoice,
            work=work,
        )

    async def GetInvoice(self, request: pb.GetInvoiceRequest, context: Ctx) -> pb.Invoice:
        principal = auth.current()
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: Any) -> pb.Invoice:
            return self._pb(await service.get_invoice(conn, principal, invoice_id=invoice_id))

        return await self._edge.run(principal, work)

    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, context: Ctx
    ) -> pb.ListInvoicesResponse:
        principal = auth.current()
        query = service.ListQuery(
            limit=request.limit,
            cursor=request.cursor,
            order_by=request.order_by,
            direction=request.direction,
            filter=request.filter,
            show_deleted=request.show_deleted,
            include_total=request.include_total,
        )

        async def work(conn: Any) -> pb.ListInvoicesResponse:
            page = await service.list_invoices(conn, principal, query=query, deps=self._deps)
            return pb.ListInvoicesResponse(
                data=[self._pb(item) for item in page.items],
                next_cursor=page.next_cursor,
                total=page.total,
            )

        return await self._edge.run(principal, work)

    async def UpdateInvoice(self, request: pb.UpdateInvoiceRequest, context: Ctx) -> pb.Invoice:
        principal = auth.current()
        invoice_id = convert.invoice_id(request.invoice.id, "invoice.id")

        async def work(conn: Any) -> pb.Invoice:
            current = await service.get_invoice(conn, principal, invoice_id=invoice_id)
            changes, claimed = convert.changes_for_update(
                request.invoice,
                request.update_mask.paths,
                request.HasField("update_mask"),
                currency=current.draft.currency,
            )
            invoice = await service.update_invoice(
                conn,
                principal,
                invoice_id=invoice_id,
                changes=changes,
                claimed=claimed,
                etag=request.invoice.etag,
            )
            return self._pb(invoice)

        return await self._edge.run(principal, work)

    async def DeleteInvoice(self, request: pb.DeleteInvoiceRequest, context: Ctx) -> pb.Invoice:
        principal = auth.current()
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: Any) -> pb.Invoice:
            invoice = await service.delete_invoice(
                conn, principal, invoice_id=invoice_id, etag=request.etag
            )
            return self._pb(invoice)

        return await self._edge.run(principal, work)

    async def UndeleteInvoice(self, request: pb.UndeleteInvoiceRequest, context: Ctx) -> pb.Invoice:
        principal = auth.current()
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: Any) -> pb.Invoice:
            invoice = await service.undelete_invoice(
                conn, principal, invoice_id=invoice_id, etag=request.etag
            )
            return self._pb(invoice)

        return await self._edge.run_idempotent(
            principal,
            method="UndeleteInvoice",
            request=request,
            request_id=request.request_id,
            response_type=pb.Invoice,
            work=work,
        )

    async def IssueInvoice(self, request: pb.IssueInvoiceRequest, context: Ctx) -> pb.Invoice:
        principal = auth.current()
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: Any) -> pb.Invoice:
            invoice = await service.issue_invoice(
                conn, principal, invoice_id=invoice_id, etag=request.etag, deps=self._deps
            )
            return self._pb(invoice)

        return await self._edge.run_idempotent(
            principal,
            method="IssueInvoice",
            request=request,
            request_id=request.request_id,
            response_type=pb.Invoice,
            work=work,
        )

    async def VoidInvoice(self, request: pb.VoidInvoiceRequest, context: Ctx) -> pb.Invoice:
        principal = auth.current()
        invoice_id = convert.invoice_id(request.id)
        reason = convert.text(request.reason, "reason", max_length=1000)

        async def work(conn: Any) -> pb.Invoice:
            invoice = await service.void_invoice(
                conn, principal, invoice_id=invoice_id, etag=request.etag, reason=reason
            )
            return self._pb(invoice)

        return await self._edge.run_idempotent(
            principal,
            method="VoidInvoice",
            request=request,
            request_id=request.request_id,
            response_type=pb.Invoice,
            work=work,
        )

    async def PayInvoice(self, request: pb.PayInvoiceRequest, context: Ctx) -> pb.Invoice:
        raise errors.unimplemented("PayInvoice")
