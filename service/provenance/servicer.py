"""ProvenanceService: decode, call one use case, encode."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import provenance_pb2 as pb

from service.edge import pbconv
from service.edge.runtime import Runtime
from service.invoices import service as invoices
from service.kit import db, listing
from service.kit.auth import Principal
from service.provenance import convert, service
from service.provenance.queries import PROVENANCES


class ProvenanceServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps

    async def CreateInvoiceProvenance(
        self, request: pb.CreateInvoiceProvenanceRequest, _: Any
    ) -> pb.InvoiceProvenance:
        draft = convert.provenance_draft(request.invoice_provenance)

        async def work(conn: db.Conn, p: Principal) -> pb.InvoiceProvenance:
            # Unknown, deleted or another tenant's invoice: NOT_FOUND, as for the connection.
            await invoices.get_live(conn, p, invoice_id=draft.invoice_id)
            return convert.provenance_to_pb(await service.create_provenance(conn, p, draft=draft))

        return await self._calls.idempotent(request, work)

    async def GetInvoiceProvenance(
        self, request: pb.GetInvoiceProvenanceRequest, _: Any
    ) -> pb.InvoiceProvenance:
        provenance_id = pbconv.required_id(request.id, "provenance", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.InvoiceProvenance:
            found = await service.get_provenance(conn, p, provenance_id=provenance_id)
            return convert.provenance_to_pb(found)

        return await self._calls.run(work)

    async def ListInvoiceProvenances(
        self, request: pb.ListInvoiceProvenancesRequest, _: Any
    ) -> pb.ListInvoiceProvenancesResponse:
        query = listing.query_from_request(request, PROVENANCES)

        async def work(conn: db.Conn, p: Principal) -> pb.ListInvoiceProvenancesResponse:
            page = await service.list_provenances(conn, p, query=query, deps=self._deps)
            return pbconv.page_to_pb(
                pb.ListInvoiceProvenancesResponse, page, convert.provenance_to_pb
            )

        return await self._calls.run(work)

    async def DeleteInvoiceProvenance(
        self, request: pb.DeleteInvoiceProvenanceRequest, _: Any
    ) -> pb.InvoiceProvenance:
        provenance_id = pbconv.required_id(request.id, "provenance", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.InvoiceProvenance:
            deleted = await service.delete_provenance(conn, p, provenance_id=provenance_id)
            return convert.provenance_to_pb(deleted)

        return await self._calls.run(work)
