"""The transaction rpcs of AllocationService: decode, call one use case, encode."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import allocations_pb2 as pb

from service.edge import pbconv
from service.edge.runtime import Runtime
from service.kit import db, listing
from service.kit.auth import Principal
from service.transactions import convert, service
from service.transactions.queries import TRANSACTIONS


class TransactionServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps

    async def CreateTransaction(
        self, request: pb.CreateTransactionRequest, _: Any
    ) -> pb.Transaction:
        draft = convert.transaction_draft(request.transaction)

        async def work(conn: db.Conn, p: Principal) -> pb.Transaction:
            created = await service.create_transaction(conn, p, draft=draft, deps=self._deps)
            return convert.transaction_to_pb(created)

        return await self._calls.idempotent(request, work)

    async def GetTransaction(self, request: pb.GetTransactionRequest, _: Any) -> pb.Transaction:
        transaction_id = pbconv.required_id(request.id, "transaction", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Transaction:
            found = await service.get_transaction(conn, p, transaction_id=transaction_id)
            return convert.transaction_to_pb(found)

        return await self._calls.run(work)

    async def ListTransactions(
        self, request: pb.ListTransactionsRequest, _: Any
    ) -> pb.ListTransactionsResponse:
        query = listing.query_from_request(request, TRANSACTIONS)

        async def work(conn: db.Conn, p: Principal) -> pb.ListTransactionsResponse:
            page = await service.list_transactions(conn, p, query=query, deps=self._deps)
            return pbconv.page_to_pb(pb.ListTransactionsResponse, page, convert.transaction_to_pb)

        return await self._calls.run(work)

    async def DeleteTransaction(
        self, request: pb.DeleteTransactionRequest, _: Any
    ) -> pb.Transaction:
        transaction_id = pbconv.required_id(request.id, "transaction", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Transaction:
            deleted = await service.delete_transaction(
                conn, p, transaction_id=transaction_id, etag=request.etag
            )
            return convert.transaction_to_pb(deleted)

        return await self._calls.run(work)
