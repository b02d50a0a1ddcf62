"""The standalone gateway's dispatcher: each rpc forwarded over a gRPC channel, with the
server's rich status carried back."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from service.edge.pipeline import RpcFailure


class Remote:
    """Calls the rpcs of `services` on `channel`."""

    def __init__(self, channel: grpc.aio.Channel, services: Sequence[ServiceDescriptor]) -> None:
        self._calls: dict[str, Any] = {}
        for service in services:
            for method in service.methods:
                response_cls = message_factory.GetMessageClass(method.output_type)
                full = f"/{service.full_name}/{method.name}"
                self._calls[full] = channel.unary_unary(
                    full,
                    request_serializer=_serialize,
                    response_deserializer=response_cls.FromString,
                )

    async def __call__(
        self,
        full_method: str,
        request: Message,
        metadata: Sequence[tuple[str, str]],
        timeout: float | None,  # noqa: ASYNC109 - a per-call deadline, as gRPC's
    ) -> tuple[Message, Mapping[str, str]]:
        call = self._calls[full_method](request, metadata=tuple(metadata), timeout=timeout)
        try:
            response: Message = await call
        except grpc.aio.AioRpcError as err:
            raise _failure(err) from err
        trailing = {k: v for k, v in (await call.trailing_metadata() or ()) if isinstance(v, str)}
        return response, trailing


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _failure(err: grpc.aio.AioRpcError) -> RpcFailure:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]  # works on AioRpcError
    if status is None:
        code = getattr(code_pb2, err.code().name, code_pb2.UNKNOWN)
        status = status_pb2.Status(code=code, message=err.details() or "")
    trailing = {k: v for k, v in (err.trailing_metadata() or ()) if isinstance(v, str)}
    return RpcFailure(status, trailing.get("x-request-id", ""))
