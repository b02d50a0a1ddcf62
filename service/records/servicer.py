"""RecordsService over gRPC: decode, call one use case, encode. Never decides."""

from __future__ import annotations

from typing import Any, TypeAlias

import grpc
from google.protobuf import json_format, struct_pb2
from invoicing.v1 import records_pb2 as pb
from invoicing.v1 import records_pb2_grpc

from service.allocations import convert as allocation_convert
from service.allocations import service as allocations
from service.edge.calls import Edge
from service.kit import auth, db
from service.records import service

SERVICE = pb.DESCRIPTOR.services_by_name["RecordsService"].full_name
PERMISSIONS = {f"/{SERVICE}/QueryRecords": "allocations.read"}
Ctx: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


class RecordsServicer(records_pb2_grpc.RecordsServiceServicer):
    def __init__(self, edge: Edge, deps: allocations.Deps) -> None:
        self._edge = edge
        self._deps = deps

    async def QueryRecords(
        self, request: pb.QueryRecordsRequest, context: Ctx
    ) -> pb.QueryRecordsResponse:
        service.check_root(request.root)
        principal = auth.current().in_workspace(request.workspace_id)
        query = service.RecordsQuery(
            root=request.root,
            where=json_format.MessageToDict(request.where_clause),
            order_field=request.order_by.field,
            direction=request.order_by.direction,
            limit=request.limit,
            cursor=request.cursor,
            show_deleted=request.show_deleted,
            include_total=request.include_total,
        )

        async def work(conn: db.Conn) -> pb.QueryRecordsResponse:
            page = await service.query_records(conn, principal, query=query, deps=self._deps)
            return pb.QueryRecordsResponse(
                data=[_record(allocation_convert.allocation_to_pb(item)) for item in page.items],
                next_cursor=page.next_cursor,
                total=page.total,
            )

        return await self._edge.run(principal, work)


def _record(message: Any) -> struct_pb2.Struct:
    record = struct_pb2.Struct()
    record.update(
        json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    )
    return record
