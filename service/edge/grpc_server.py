"""The gRPC transport: every registered rpc as a generic handler that hands the raw
request bytes to the pipeline (so an undecodable message is INVALID_ARGUMENT in the usual
error shape), plus the server's options and binding."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import Message
from grpc_status import rpc_status

from service.edge.pipeline import Call, Method, Pipeline, RpcFailure
from service.kit.config import Settings

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"


def generic_handlers(methods: Iterable[Method], pipeline: Pipeline) -> list[grpc.GenericRpcHandler]:
    by_service: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = defaultdict(dict)
    for method in methods:
        service = method.full_name.rsplit("/", 1)[0].lstrip("/")
        by_service[service][method.name] = grpc.unary_unary_rpc_method_handler(
            _behavior(method, pipeline),
            request_deserializer=None,  # raw bytes: the pipeline decodes
            response_serializer=_serialize,
        )
    return [grpc.method_handlers_generic_handler(s, h) for s, h in by_service.items()]


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _behavior(method: Method, pipeline: Pipeline) -> Any:
    async def handle(request: bytes, context: Context) -> Message:
        call = Call(method, metadata=_metadata(context), transport="grpc")
        try:
            response = await pipeline.run(call, request)
        except RpcFailure as failure:
            await context.abort_with_status(_grpc_status(failure))
            raise  # unreachable: abort_with_status raises
        context.set_trailing_metadata(tuple(call.trailing.items()))
        return response

    return handle


def _metadata(context: Context) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str) and key not in metadata:
            metadata[key] = value
    return metadata


def _grpc_status(failure: RpcFailure) -> grpc.Status:
    converted = rpc_status.to_status(failure.status)
    return _Status(
        code=converted.code,
        details=converted.details,
        trailing_metadata=(*converted.trailing_metadata, ("x-request-id", failure.trace_id)),
    )


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def server_options(settings: Settings) -> list[tuple[str, Any]]:
    return [
        ("grpc.so_reuseport", 1 if settings.grpc_reuseport else 0),
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.max_connection_idle_ms", 15 * 60_000),
    ]


def bind(server: grpc.aio.Server, settings: Settings) -> int:
    """Bind the configured address (TLS or mutual TLS when set); OSError if it fails."""
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    try:
        if settings.tls_cert_file is not None and settings.tls_key_file is not None:
            ca = settings.tls_client_ca_file
            credentials = grpc.ssl_server_credentials(
                [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
                root_certificates=ca.read_bytes() if ca else None,
                require_client_auth=ca is not None,
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise OSError(f"could not bind gRPC to {address}") from exc
    if port == 0 or (settings.grpc_port != 0 and port != settings.grpc_port):
        raise OSError(f"could not bind gRPC to {address} (is the port in use?)")
    return port
