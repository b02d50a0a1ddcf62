"""ConnectionService: decode, call one use case, encode."""

from __future__ import annotations

import functools
from typing import Any

from google.protobuf import empty_pb2
from invoicing.v1 import connections_pb2 as pb

from service.connections import convert, service
from service.connections.queries import CONNECTIONS
from service.connections.rules import SECRET_FIELDS
from service.edge import pbconv
from service.edge.runtime import Runtime
from service.ingestion import service as ingestion
from service.kit import auth, db, errors, listing
from service.kit.auth import Principal


class ConnectionServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps

    async def CreateConnection(self, request: pb.CreateConnectionRequest, _: Any) -> pb.Connection:
        draft = convert.connection_draft(request)

        async def work(conn: db.Conn, p: Principal) -> pb.Connection:
            created = await service.create_connection(conn, p, draft=draft, deps=self._deps)
            return convert.connection_to_pb(created)

        return await self._calls.idempotent(request, work, secrets=SECRET_FIELDS)

    async def GetConnection(self, request: pb.GetConnectionRequest, _: Any) -> pb.Connection:
        connection_id = pbconv.required_id(request.id, "connection", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.Connection:
            found = await service.get_connection(
                conn, p, connection_id=connection_id, deps=self._deps
            )
            return convert.connection_to_pb(found)

        return await self._calls.run(work)

    async def ListConnections(
        self, request: pb.ListConnectionsRequest, _: Any
    ) -> pb.ListConnectionsResponse:
        query = listing.query_from_request(request, CONNECTIONS)

        async def work(conn: db.Conn, p: Principal) -> pb.ListConnectionsResponse:
            page = await service.list_connections(conn, p, query=query, deps=self._deps)
            return pbconv.page_to_pb(pb.ListConnectionsResponse, page, convert.connection_to_pb)

        return await self._calls.run(work)

    async def UpdateConnection(self, request: pb.UpdateConnectionRequest, _: Any) -> pb.Connection:
        connection_id = pbconv.required_id(request.id, "connection", "id")
        changes = convert.changes(request)

        async def work(conn: db.Conn, p: Principal) -> pb.Connection:
            updated = await service.update_connection(
                conn,
                p,
                connection_id=connection_id,
                changes=changes,
                etag=request.etag,
                deps=self._deps,
            )
            return convert.connection_to_pb(updated)

        return await self._calls.run(work)

    async def DeleteConnection(
        self, request: pb.DeleteConnectionRequest, _: Any
    ) -> empty_pb2.Empty:
        connection_id = pbconv.required_id(request.id, "connection", "id")

        async def work(conn: db.Conn, p: Principal) -> empty_pb2.Empty:
            await service.delete_connection(conn, p, connection_id=connection_id, etag=request.etag)
            return empty_pb2.Empty()

        return await self._calls.run(work)

    async def PollConnection(self, request: pb.PollConnectionRequest, _: Any) -> pb.Connection:
        """One poll now, page by page (each its own transaction, as the worker's), until the
        provider has no next page; the worker may take pages meanwhile (the row lock
        orders them), and the counts add up in `last_poll` either way."""
        connection_id = pbconv.required_id(request.id, "connection", "id")
        principal = auth.current()
        deps = self._deps
        client = ingestion.client(deps)

        async def page(conn: db.Conn) -> ingestion.PageOutcome:
            await service.get_live(conn, principal, connection_id=connection_id)
            return await ingestion.poll_page(
                conn, principal, connection_id=connection_id, deps=deps, client=client
            )

        while True:
            try:
                outcome = await self._calls.transaction(principal, page)
            except ingestion.ProviderError as exc:
                await self._calls.transaction(
                    principal,
                    functools.partial(
                        ingestion.poll_failed,
                        principal=principal,
                        connection_id=connection_id,
                        error=exc,
                        deps=deps,
                    ),
                )
                if exc.refused:
                    raise errors.failed_precondition(
                        str(exc), "PROVIDER_REFUSED_CREDENTIALS"
                    ) from None
                raise errors.DomainError(
                    str(exc), "PROVIDER_UNAVAILABLE", code=errors.Code.UNAVAILABLE
                ) from None
            if outcome.not_polled:
                raise errors.failed_precondition(
                    f"the connection is not polled: {outcome.not_polled}",
                    "CONNECTION_NOT_POLLED",
                )
            if not outcome.more:
                break

        async def read(conn: db.Conn, p: Principal) -> pb.Connection:
            found = await service.get_connection(conn, p, connection_id=connection_id, deps=deps)
            return convert.connection_to_pb(found)

        return await self._calls.run(read)
