"""InvoiceService over gRPC: decode, call one use case, encode. Never decides."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import invoices_pb2 as pb

from service.allocations import service as allocations
from service.edge import pbconv
from service.edge.runtime import Runtime
from service.invoices import convert, rules, service
from service.invoices.queries import INVOICES
from service.kit import db, errors, listing
from service.kit.auth import Principal


class InvoiceServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps

    def _pb(self, invoice: rules.Invoice) -> pb.Invoice:
        return convert.invoice_to_pb(invoice, today=self._deps.today())

    async def CreateInvoice(self, request: pb.CreateInvoiceRequest, _: Any) -> pb.Invoice:
        draft, claimed = convert.draft_for_create(request.invoice)

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            return self._pb(await service.create_invoice(conn, p, draft=draft, claimed=claimed))

        return await self._calls.idempotent(request, work)

    async def GetInvoice(self, request: pb.GetInvoiceRequest, _: Any) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: db.Conn, p: Principal) -> rules.Invoice:
            return await service.get_invoice(conn, p, invoice_id=invoice_id)

        invoice = await self._calls.read_one(work)
        if invoice.parent_id is None and not invoice.is_parent:
            return self._pb(invoice)

        async def related(conn: db.Conn, p: Principal) -> pb.Invoice:
            found = await service.related_of(conn, p, invoice)
            return convert.invoice_to_pb(invoice, today=self._deps.today(), related=found)

        return await self._calls.run(related)  # aggregated invoices only: one more read

    async def ListInvoices(
        self, request: pb.ListInvoicesRequest, _: Any
    ) -> pb.ListInvoicesResponse:
        query = listing.query_from_request(request, INVOICES)

        async def work(conn: db.Conn, p: Principal) -> pb.ListInvoicesResponse:
            page = await service.list_invoices(conn, p, query=query, deps=self._deps)
            return pbconv.page_to_pb(pb.ListInvoicesResponse, page, self._pb)

        return await self._calls.run(work)

    async def UpdateInvoice(self, request: pb.UpdateInvoiceRequest, _: Any) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.invoice.id, "invoice.id")
        patch = convert.patch_for_update(
            request.invoice, request.update_mask.paths, request.HasField("update_mask")
        )

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            updated = await service.update_invoice(
                conn, p, invoice_id=invoice_id, patch=patch, etag=request.invoice.etag
            )
            return self._pb(updated)

        return await self._calls.run(work)

    async def DeleteInvoice(self, request: pb.DeleteInvoiceRequest, _: Any) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            deleted = await service.delete_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag
            )
            return self._pb(deleted)

        return await self._calls.run(work)

    async def UndeleteInvoice(self, request: pb.UndeleteInvoiceRequest, _: Any) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            restored = await service.undelete_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag
            )
            return self._pb(restored)

        return await self._calls.idempotent(request, work)

    async def IssueInvoice(self, request: pb.IssueInvoiceRequest, _: Any) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            issued = await service.issue_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag, deps=self._deps
            )
            return self._pb(issued)

        return await self._calls.idempotent(request, work)

    async def VoidInvoice(self, request: pb.VoidInvoiceRequest, _: Any) -> pb.Invoice:
        invoice_id = convert.invoice_id(request.id)
        reason = convert.text(request.reason, "reason", max_length=1000)

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            voided = await service.void_invoice(
                conn, p, invoice_id=invoice_id, etag=request.etag, reason=reason
            )
            return self._pb(voided)

        return await self._calls.idempotent(request, work)

    async def PayInvoice(self, request: pb.PayInvoiceRequest, _: Any) -> pb.Invoice:
        payment = convert.payment(request)

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            paid = await allocations.pay_invoice(conn, p, payment=payment, deps=self._deps)
            return self._pb(paid)

        return await self._calls.idempotent(request, work)

    async def ListInvoiceDeliveries(
        self, request: pb.ListInvoiceDeliveriesRequest, _: Any
    ) -> pb.ListInvoiceDeliveriesResponse:
        invoice_id = pbconv.required_id(request.invoice_id, "invoice", "invoice_id")

        async def work(conn: db.Conn, p: Principal) -> pb.ListInvoiceDeliveriesResponse:
            rows = await service.list_deliveries(conn, p, invoice_id=invoice_id)
            return pb.ListInvoiceDeliveriesResponse(data=[convert.delivery_to_pb(r) for r in rows])

        return await self._calls.run(work)

    async def AggregateInvoices(self, request: pb.AggregateInvoicesRequest, _: Any) -> pb.Invoice:
        if not request.child_ids:
            raise errors.invalid("child_ids", "name at least one draft", reason="REQUIRED")
        if len(request.child_ids) > service.MAX_CHILDREN:
            raise errors.invalid(
                "child_ids", f"at most {service.MAX_CHILDREN} children", reason="TOO_MANY"
            )
        child_ids = [
            convert.invoice_id(value, f"child_ids[{i}]")
            for i, value in enumerate(request.child_ids)
        ]
        if len(set(child_ids)) != len(child_ids):
            raise errors.invalid("child_ids", "names a child twice", reason="DUPLICATE")
        notes = pbconv.text(request.notes, "notes", max_length=10000)

        async def work(conn: db.Conn, p: Principal) -> pb.Invoice:
            parent = await service.aggregate(conn, p, child_ids=child_ids, notes=notes)
            found = await service.related_of(conn, p, parent)
            return convert.invoice_to_pb(parent, today=self._deps.today(), related=found)

        return await self._calls.idempotent(request, work)

    async def ReleaseAggregation(
        self, request: pb.ReleaseAggregationRequest, _: Any
    ) -> pb.ReleaseAggregationResponse:
        parent_id = convert.invoice_id(request.id)

        async def work(conn: db.Conn, p: Principal) -> pb.ReleaseAggregationResponse:
            children = await service.release(conn, p, parent_id=parent_id, etag=request.etag)
            return pb.ReleaseAggregationResponse(children=[self._pb(c) for c in children])

        return await self._calls.run(work)

    async def GetInvoiceDocument(
        self, request: pb.GetInvoiceDocumentRequest, _: Any
    ) -> pb.InvoiceDocument:
        invoice_id = convert.invoice_id(request.id)

        async def work(conn: db.Conn, p: Principal) -> pb.InvoiceDocument:
            found = await service.document(conn, p, invoice_id=invoice_id)
            return convert.document_to_pb(found, today=self._deps.today())

        return await self._calls.run(work)
