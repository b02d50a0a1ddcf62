"""AllocationService over gRPC: decode, call one use case, encode. Never decides."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message
from invoicing.v1 import allocations_pb2 as pb
from invoicing.v1 import allocations_pb2_grpc

from service.allocations import convert, queries, service
from service.edge import pbconv
from service.edge.calls import Edge
from service.kit import auth, db, listing
from service.kit.auth import Principal

SERVICE = pb.DESCRIPTOR.services_by_name["AllocationService"].full_name
PERMISSIONS = {
    f"/{SERVICE}/{name}": "allocations.read"
    if name.startswith(("Get", "List"))
    else "allocations.write"
    for name in pb.DESCRIPTOR.services_by_name["AllocationService"].methods_by_name
}
Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
M = TypeVar("M", bound=Message)


class AllocationServicer(allocations_pb2_grpc.AllocationServiceServicer):
    def __init__(self, edge: Edge, deps: service.Deps) -> None:
        self._edge = edge
        self._deps = deps

    async def _run(
        self, work: Callable[[db.Conn, Principal], Awaitable[M]], *, workspace_id: str = ""
    ) -> M:
        principal = auth.current().in_workspace(workspace_id)
        return await self._edge.run(principal, lambda conn: work(conn, principal))

    async def _idempotent(
        self,
        method: str,
        request: Any,
        response_type: type[M],
        work: Callable[[db.Conn, Principal], Awaitable[M]],
    ) -> M:
        principal = auth.current()
        return await self._edge.run_idempotent(
            principal,
            method=method,
            request=request,
            request_id=request.request_id,
            response_type=response_type,
            work=lambda conn: work(conn, principal),
        )

    # ---- transactions --------------------------------------------------------------

    async def CreateTransaction(
        self, request: pb.CreateTransactionRequest, context: Ctx
    ) -> pb.Transaction:
        draft = convert.transaction_draft(request.transaction)

        async def work(conn: db.Conn, p: Principal) -> pb.Transaction:
            created = await service.create_transaction(conn, p, draft=draft, deps=self._deps)
            return convert.transaction_to_pb(created)

        return await self._idempotent("CreateTransaction", request, pb.Transaction, work)

    async def GetTransaction(
        self, request: pb.GetTransactionRequest, context: Ctx
    ) -> pb.Transaction:
        transaction_id = pbconv.required_id(request.id, "transaction", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Transaction:
            found = await service.get_transaction(conn, p, transaction_id=transaction_id)
            return convert.transaction_to_pb(found)

        return await self._run(work)

    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, context: Ctx
    ) -> pb.ListTransactionsResponse:
        query = listing.query_from_request(request, queries.TRANSACTIONS)

        async def work(conn: db.Conn, p: Principal) -> pb.ListTransactionsResponse:
            page = await service.list_transactions(conn, p, query=query, deps=self._deps)
            return pb.ListTransactionsResponse(
                data=[convert.transaction_to_pb(item) for item in page.items],
                next_cursor=page.next_cursor,
                total=page.total,
            )

        return await self._run(work)

    async def DeleteTransaction(
        self, request: pb.DeleteTransactionRequest, context: Ctx
    ) -> pb.Transaction:
        transaction_id = pbconv.required_id(request.id, "transaction", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Transaction:
            deleted = await service.delete_transaction(
                conn, p, transaction_id=transaction_id, etag=request.etag
            )
            return convert.transaction_to_pb(deleted)

        return await self._run(work)

    # ---- exchange rates ------------------------------------------------------------

    async def CreateExchangeRate(
        self, request: pb.CreateExchangeRateRequest, context: Ctx
    ) -> pb.ExchangeRate:
        draft = convert.rate_draft(request.exchange_rate)

        async def work(conn: db.Conn, p: Principal) -> pb.ExchangeRate:
            rate = await service.create_exchange_rate(conn, p, draft=draft)
            return convert.rate_to_pb(rate, p.tenant_id)

        return await self._idempotent("CreateExchangeRate", request, pb.ExchangeRate, work)

    async def GetExchangeRate(
        self, request: pb.GetExchangeRateRequest, context: Ctx
    ) -> pb.ExchangeRate:
        rate_id = pbconv.required_id(request.id, "exchange_rate", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.ExchangeRate:
            rate = await service.get_exchange_rate(conn, p, rate_id=rate_id)
            return convert.rate_to_pb(rate, p.tenant_id)

        return await self._run(work)

    async def ListExchangeRates(
        self, request: pb.ListExchangeRatesRequest, context: Ctx
    ) -> pb.ListExchangeRatesResponse:
        query = listing.query_from_request(request, queries.EXCHANGE_RATES)

        async def work(conn: db.Conn, p: Principal) -> pb.ListExchangeRatesResponse:
            page = await service.list_exchange_rates(conn, p, query=query, deps=self._deps)
            return pb.ListExchangeRatesResponse(
                data=[convert.rate_to_pb(rate, p.tenant_id) for rate in page.items],
                next_cursor=page.next_cursor,
                total=page.total,
            )

        return await self._run(work)

    # ---- allocations ---------------------------------------------------------------

    async def CreateAllocation(
        self, request: pb.CreateAllocationRequest, context: Ctx
    ) -> pb.Allocation:
        decoded = convert.allocation_request(request.allocation)

        async def work(conn: db.Conn, p: Principal) -> pb.Allocation:
            created = await service.create_allocation(conn, p, request=decoded)
            return convert.allocation_to_pb(created)

        return await self._idempotent("CreateAllocation", request, pb.Allocation, work)

    async def GetAllocation(self, request: pb.GetAllocationRequest, context: Ctx) -> pb.Allocation:
        allocation_id = pbconv.required_id(request.id, "allocation", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Allocation:
            found = await service.get_allocation(conn, p, allocation_id=allocation_id)
            return convert.allocation_to_pb(found)

        return await self._run(work)

    async def ListAllocations(
        self, request: pb.ListAllocationsRequest, context: Ctx
    ) -> pb.ListAllocationsResponse:
        query = listing.query_from_request(request, queries.ALLOCATIONS)

        async def work(conn: db.Conn, p: Principal) -> pb.ListAllocationsResponse:
            page = await service.list_allocations(conn, p, query=query, deps=self._deps)
            return pb.ListAllocationsResponse(
                data=[convert.allocation_to_pb(item) for item in page.items],
                next_cursor=page.next_cursor,
                total=page.total,
            )

        return await self._run(work, workspace_id=request.workspace_id)

    async def DeleteAllocation(
        self, request: pb.DeleteAllocationRequest, context: Ctx
    ) -> pb.Allocation:
        allocation_id = pbconv.required_id(request.id, "allocation", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Allocation:
            reversed_ = await service.delete_allocation(
                conn, p, allocation_id=allocation_id, etag=request.etag
            )
            return convert.allocation_to_pb(reversed_)

        return await self._run(work)

    # ---- workspace settings --------------------------------------------------------

    async def GetWorkspaceSettings(
        self, request: pb.GetWorkspaceSettingsRequest, context: Ctx
    ) -> pb.WorkspaceSettings:
        async def work(conn: db.Conn, p: Principal) -> pb.WorkspaceSettings:
            return convert.settings_to_pb(await service.get_settings(conn, p))

        return await self._run(work, workspace_id=request.workspace_id)

    async def UpdateWorkspaceSettings(
        self, request: pb.UpdateWorkspaceSettingsRequest, context: Ctx
    ) -> pb.WorkspaceSettings:
        changes = convert.settings_changes(
            request.settings, request.update_mask.paths, request.HasField("update_mask")
        )

        async def work(conn: db.Conn, p: Principal) -> pb.WorkspaceSettings:
            updated = await service.update_settings(
                conn, p, changes=changes, etag=request.settings.etag
            )
            return convert.settings_to_pb(updated)

        return await self._run(work, workspace_id=request.workspace_id)
