"""RecordsService over gRPC: decode, call one use case, encode. Never decides."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.message import Message
from invoicing.v1 import records_pb2 as pb

from service.edge import pbconv
from service.edge.runtime import Runtime
from service.kit import db
from service.kit.auth import Principal
from service.records import service


class RecordsServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps
        self._roots = {root.name: root for m in runtime.modules for root in m.records}

    async def QueryRecords(
        self, request: pb.QueryRecordsRequest, _: Any
    ) -> pb.QueryRecordsResponse:
        root = service.find_root(self._roots, request.root)
        query = service.RecordsQuery(
            root=request.root,
            where=pbconv.struct_to_python(request.where_clause, "where_clause"),
            order_field=request.order_by.field,
            direction=request.order_by.direction,
            limit=request.limit,
            cursor=request.cursor,
            show_deleted=request.show_deleted,
            include_total=request.include_total,
        )

        async def work(conn: db.Conn, p: Principal) -> pb.QueryRecordsResponse:
            page = await service.query_records(conn, p, root=root, query=query, deps=self._deps)
            return pb.QueryRecordsResponse(
                data=[_record(root.encode(item)) for item in page.items],
                next_cursor=page.next_cursor,
                total=page.total,
            )

        return await self._calls.run(work, workspace_id=request.workspace_id)


def _record(message: Message) -> struct_pb2.Struct:
    record = struct_pb2.Struct()
    record.update(
        json_format.MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    )
    return record
