"""CounterpartyService: decode, call one use case, encode."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import counterparties_pb2 as pb

from service.counterparties import convert, service
from service.counterparties.queries import COUNTERPARTIES
from service.edge import pbconv
from service.edge.runtime import Runtime
from service.kit import db, ids, listing
from service.kit.auth import Principal


def _id(value: str, field_path: str) -> Any:
    parsed = ids.parse_uuid(value, field_path, empty_ok=False)
    assert parsed is not None
    return parsed


class CounterpartyServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps

    async def CreateCounterparty(
        self, request: pb.CreateCounterpartyRequest, _: Any
    ) -> pb.Counterparty:
        draft = convert.counterparty_draft(request.counterparty)

        async def work(conn: db.Conn, p: Principal) -> pb.Counterparty:
            created = await service.create_counterparty(conn, p, draft=draft)
            return convert.counterparty_to_pb(created)

        return await self._calls.idempotent(request, work)

    async def GetCounterparty(self, request: pb.GetCounterpartyRequest, _: Any) -> pb.Counterparty:
        counterparty_id = _id(request.id, "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Counterparty:
            found = await service.get_counterparty(conn, p, counterparty_id=counterparty_id)
            return convert.counterparty_to_pb(found)

        return await self._calls.run(work)

    async def ListCounterparties(
        self, request: pb.ListCounterpartiesRequest, _: Any
    ) -> pb.ListCounterpartiesResponse:
        query = listing.query_from_request(request, COUNTERPARTIES)

        async def work(conn: db.Conn, p: Principal) -> pb.ListCounterpartiesResponse:
            page = await service.list_counterparties(conn, p, query=query, deps=self._deps)
            return pbconv.page_to_pb(
                pb.ListCounterpartiesResponse, page, convert.counterparty_to_pb
            )

        return await self._calls.run(work)

    async def UpdateCounterparty(
        self, request: pb.UpdateCounterpartyRequest, _: Any
    ) -> pb.Counterparty:
        counterparty_id = _id(request.counterparty.id, "counterparty.id")
        changes = convert.changes(request.counterparty, list(request.update_mask.paths))

        async def work(conn: db.Conn, p: Principal) -> pb.Counterparty:
            updated = await service.update_counterparty(
                conn,
                p,
                counterparty_id=counterparty_id,
                changes=changes,
                etag=request.counterparty.etag,
            )
            return convert.counterparty_to_pb(updated)

        return await self._calls.run(work)

    async def DeleteCounterparty(
        self, request: pb.DeleteCounterpartyRequest, _: Any
    ) -> pb.Counterparty:
        counterparty_id = _id(request.id, "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Counterparty:
            deleted = await service.delete_counterparty(
                conn, p, counterparty_id=counterparty_id, etag=request.etag
            )
            return convert.counterparty_to_pb(deleted)

        return await self._calls.run(work)
