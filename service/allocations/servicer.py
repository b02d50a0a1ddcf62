"""The allocation rpcs of AllocationService: decode, call one use case, encode."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import allocations_pb2 as pb

from service.allocations import convert, service
from service.allocations.queries import ALLOCATIONS
from service.edge import pbconv
from service.edge.runtime import Runtime
from service.kit import db, listing
from service.kit.auth import Principal


class AllocationServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps

    async def CreateAllocation(self, request: pb.CreateAllocationRequest, _: Any) -> pb.Allocation:
        decoded = convert.allocation_request(request.allocation)

        async def work(conn: db.Conn, p: Principal) -> pb.Allocation:
            created = await service.create_allocation(conn, p, request=decoded)
            return convert.allocation_to_pb(created)

        return await self._calls.idempotent(request, work)

    async def GetAllocation(self, request: pb.GetAllocationRequest, _: Any) -> pb.Allocation:
        allocation_id = pbconv.required_id(request.id, "allocation", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Allocation:
            found = await service.get_allocation(conn, p, allocation_id=allocation_id)
            return convert.allocation_to_pb(found)

        return await self._calls.run(work)

    async def ListAllocations(
        self, request: pb.ListAllocationsRequest, _: Any
    ) -> pb.ListAllocationsResponse:
        query = listing.query_from_request(request, ALLOCATIONS)

        async def work(conn: db.Conn, p: Principal) -> pb.ListAllocationsResponse:
            page = await service.list_allocations(conn, p, query=query, deps=self._deps)
            return pbconv.page_to_pb(pb.ListAllocationsResponse, page, convert.allocation_to_pb)

        return await self._calls.run(work, workspace_id=request.workspace_id)

    async def DeleteAllocation(self, request: pb.DeleteAllocationRequest, _: Any) -> pb.Allocation:
        allocation_id = pbconv.required_id(request.id, "allocation", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Allocation:
            reversed_ = await service.delete_allocation(
                conn, p, allocation_id=allocation_id, etag=request.etag
            )
            return convert.allocation_to_pb(reversed_)

        return await self._calls.run(work)
