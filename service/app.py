"""Builds and runs the gRPC server. Nothing here runs at import time."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from invoicing.v1 import (
    allocations_pb2_grpc,
    connections_pb2,
    invoices_pb2_grpc,
    provenance_pb2,
    records_pb2_grpc,
)

from service.allocations import service as allocations_service
from service.allocations import servicer as allocations_servicer
from service.edge import interceptors
from service.edge.calls import Edge
from service.gateway.server import GatewaySettings, RunningGateway, build_app
from service.invoices import servicer as invoices_servicer
from service.invoices.service import Deps
from service.kit import auth, db, errors
from service.kit.config import Settings
from service.kit.pagination import CursorCodec
from service.records import servicer as records_servicer

log = logging.getLogger("service")

# Services whose RPCs answer UNIMPLEMENTED until their issues land.
PENDING: dict[str, tuple[ServiceDescriptor, str]] = {
    "ProvenanceService": (
        provenance_pb2.DESCRIPTOR.services_by_name["ProvenanceService"],
        "provenance",
    ),
    "ConnectionService": (
        connections_pb2.DESCRIPTOR.services_by_name["ConnectionService"],
        "connections",
    ),
}
READ_VERBS = ("Get", "List", "Query")


@dataclass
class Running:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    database: db.Database
    gateway: RunningGateway | None = None
    channel: grpc.aio.Channel | None = None

    @property
    def gateway_port(self) -> int:
        return self.gateway.port if self.gateway is not None else 0


def permissions() -> dict[str, str]:
    table = {
        **invoices_servicer.PERMISSIONS,
        **allocations_servicer.PERMISSIONS,
        **records_servicer.PERMISSIONS,
    }
    for descriptor, resource in PENDING.values():
        for name in descriptor.methods_by_name:
            kind = "read" if name.startswith(READ_VERBS) else "write"
            table[f"/{descriptor.full_name}/{name}"] = f"{resource}.{kind}"
    return table


def _unimplemented_handler(descriptor: ServiceDescriptor) -> grpc.GenericRpcHandler:
    pool = descriptor_pool.Default()
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in descriptor.methods:
        request_cls = message_factory.GetMessageClass(
            pool.FindMessageTypeByName(method.input_type.full_name)
        )
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            _not_yet(method.full_name),
            request_deserializer=request_cls.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )
    return grpc.method_handlers_generic_handler(descriptor.full_name, handlers)


def _not_yet(name: str) -> Callable[[Any, Any], Any]:
    async def behavior(request: Any, context: Any) -> Any:
        raise errors.unimplemented(name)

    return behavior


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


def cursor_secret(settings: Settings) -> bytes:
    if settings.cursor_secret:
        return settings.cursor_secret.encode()
    # Derived from the dev secret so cursors survive restarts of a dev server.
    return hashlib.sha256(b"cursor|" + auth.dev_secret(settings.data_dir)).digest()


async def start(settings: Settings, database_url: str) -> Running:
    """Create the engine and server, bind the port, and start serving."""
    database = await db.Database.connect(
        database_url,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    authenticator = auth.Authenticator(key=auth.load_key(settings), settings=settings)
    server = grpc.aio.server(
        interceptors=[
            interceptors.ErrorInterceptor(),
            interceptors.AuthInterceptor(authenticator, permissions()),
        ],
        options=server_options(settings),
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
    )
    edge = Edge(database, idempotency_ttl=timedelta(hours=settings.idempotency_ttl_hours))
    cursors = CursorCodec(cursor_secret(settings))
    deps = Deps(cursors=cursors, number_prefix=settings.invoice_number_prefix)
    allocation_deps = allocations_service.Deps(cursors=cursors)
    invoices_pb2_grpc.add_InvoiceServiceServicer_to_server(
        invoices_servicer.InvoiceServicer(edge, deps, allocation_deps), server
    )
    allocations_pb2_grpc.add_AllocationServiceServicer_to_server(
        allocations_servicer.AllocationServicer(edge, allocation_deps), server
    )
    records_pb2_grpc.add_RecordsServiceServicer_to_server(
        records_servicer.RecordsServicer(edge, allocation_deps), server
    )
    server.add_generic_rpc_handlers(tuple(_unimplemented_handler(d) for d, _ in PENDING.values()))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [
        invoices_servicer.SERVICE,
        allocations_servicer.SERVICE,
        records_servicer.SERVICE,
        *(d.full_name for d, _ in PENDING.values()),
    ]
    reflection.enable_server_reflection(
        (*names, reflection.SERVICE_NAME, health.SERVICE_NAME), server
    )
    try:
        port = _bind(server, settings)
    except OSError:
        await database.close()
        raise
    await server.start()
    for name in ("", *names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = Running(server=server, port=port, health=health_servicer, database=database)
    if settings.gateway_enabled:
        try:
            await _start_gateway(running, settings)
        except BaseException:
            await stop(running, 0)
            raise
    return running


async def _start_gateway(running: Running, settings: Settings) -> None:
    """The REST gateway in this process, forwarding over a loopback gRPC channel."""
    target = f"127.0.0.1:{running.port}"
    if settings.tls_client_ca_file is not None:
        log.warning("mutual TLS is on: start the gateway standalone with a client certificate")
        return
    if settings.tls_cert_file is not None:
        credentials = grpc.ssl_channel_credentials(settings.tls_cert_file.read_bytes())
        options = (("grpc.ssl_target_name_override", "localhost"),)
        running.channel = grpc.aio.secure_channel(target, credentials, options=options)
    else:
        running.channel = grpc.aio.insecure_channel(target)
    gateway_settings = GatewaySettings.from_settings(settings)
    running.gateway = RunningGateway(build_app(running.channel, gateway_settings), gateway_settings)
    await running.gateway.start()


def _bind(server: grpc.aio.Server, settings: Settings) -> int:
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


async def stop(running: Running, grace: float) -> None:
    """Health NOT_SERVING, let in-flight RPCs finish within `grace`, close the pool."""
    await running.health.enter_graceful_shutdown()
    if running.gateway is not None:
        await running.gateway.stop()
    await running.server.stop(grace)
    if running.channel is not None:
        await running.channel.close()
    await running.database.close()


async def serve(settings: Settings, database_url: str, on_ready: Callable[[Running], None]) -> None:
    running = await start(settings, database_url)
    on_ready(running)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("shutting down", extra={"fields": {"grace_s": settings.shutdown_grace_seconds}})
    await stop(running, settings.shutdown_grace_seconds)
    log.info("stopped")
