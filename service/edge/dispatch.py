"""In-process dispatch: a REST call goes to the registered handler through the same
pipeline as a gRPC call, with no loopback channel and no serialization."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from service.edge.pipeline import Call, Method, Pipeline, RpcFailure


class InProcess:
    """Calls registered rpcs by full method name, like a gRPC client would."""

    def __init__(self, methods: Sequence[Method], pipeline: Pipeline) -> None:
        self._methods = {m.full_name: m for m in methods}
        self._pipeline = pipeline

    async def __call__(
        self,
        full_method: str,
        request: Message,
        metadata: Sequence[tuple[str, str]],
        timeout: float | None,  # noqa: ASYNC109 - a per-call deadline, as gRPC's
    ) -> tuple[Message, Mapping[str, str]]:
        method = self._methods.get(full_method)
        if method is None:
            status = status_pb2.Status(
                code=code_pb2.UNIMPLEMENTED, message=f"{full_method} is not served here"
            )
            raise RpcFailure(status, "")
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        call = Call(method, metadata=dict(metadata), transport="rest", deadline=deadline)
        response = await self._pipeline.run(call, request)
        return response, call.trailing
