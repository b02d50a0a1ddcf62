"""Serving the gateway: in the server process (in-process dispatch), or standalone in
front of a remote gRPC server (`python -m service.gateway`)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import uvicorn
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from service.edge.metrics import Metrics
from service.gateway import guard, openapi
from service.gateway.app import Dispatcher, Gateway, GatewayConfig
from service.gateway.bindings import bindings_from_services, generated_services
from service.gateway.remote import Remote
from service.kit.config import Settings

log = logging.getLogger("service.gateway")
ROOT = Path(__file__).resolve().parents[2]
DESCRIPTOR_SET = ROOT / "generated" / "invoicing_v1.binpb"
# Request body examples by rpc, kept beside the protos (the gateway knows no resource).
EXAMPLES = ROOT / "protos" / "invoicing" / "v1" / "openapi-examples.json"


@dataclass(frozen=True)
class GatewaySettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 1024 * 1024
    timeout_s: float = 30.0
    cors_origins: tuple[str, ...] = ()
    limits: guard.Limits = dataclasses.field(default_factory=guard.Limits)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> GatewaySettings:
        values: dict[str, Any] = {
            "host": settings.gateway_host,
            "port": settings.gateway_port,
            "max_body_bytes": settings.gateway_max_body_bytes,
            "timeout_s": float(settings.gateway_timeout_seconds),
            "cors_origins": settings.gateway_cors_origins,
            "limits": guard.Limits(
                max_connections=settings.gateway_max_connections,
                header_timeout_s=float(settings.gateway_header_timeout_seconds),
                max_header_bytes=settings.gateway_max_header_bytes,
                idle_timeout_s=float(settings.gateway_idle_timeout_seconds),
            ),
        }
        return cls(**(values | overrides))


def build_app(
    dispatcher: Dispatcher,
    services: Sequence[ServiceDescriptor],
    settings: GatewaySettings,
    *,
    routes: Sequence[BaseRoute] = (),
    observe: Callable[[str, str, int, float], None] | None = None,
) -> Any:
    """The gateway for every rpc of `services` that carries http rules."""
    comments = openapi.load_comments(DESCRIPTOR_SET) if DESCRIPTOR_SET.exists() else {}
    examples = json.loads(EXAMPLES.read_text()) if EXAMPLES.exists() else {}
    config = GatewayConfig(
        max_body_bytes=settings.max_body_bytes,
        default_timeout_s=settings.timeout_s,
        comments=comments,
        examples=examples,
        allowed_origins=frozenset(settings.cors_origins),
        observe=observe,
    )
    app: Any = Gateway(dispatcher, bindings_from_services(services), config, routes=routes)
    if settings.cors_origins:
        app = CORSMiddleware(
            app,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=[
                "authorization",
                "content-type",
                "x-request-id",
                "idempotency-key",
                "grpc-timeout",
                "if-match",
                "if-none-match",
                "traceparent",
            ],
            expose_headers=["x-request-id", "etag", "location", "idempotent-replayed"],
            max_age=600,
        )
    return app


class RunningGateway:
    """A uvicorn server started inside the current event loop (no signal handling of
    its own: the owner stops it)."""

    def __init__(self, app: Any, settings: GatewaySettings) -> None:
        limits = settings.limits
        capped = guard.descriptor_budget(limits.max_connections)
        if capped < limits.max_connections:
            log.warning(
                "REST connection cap lowered to fit the descriptor limit",
                extra={"fields": {"wanted": limits.max_connections, "cap": capped}},
            )
            limits = dataclasses.replace(limits, max_connections=capped)
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.port,
            lifespan="off",
            access_log=False,
            log_level="warning",
            server_header=False,
            http=guard.protocol(limits),
            timeout_keep_alive=int(limits.idle_timeout_s),
            backlog=min(2048, limits.max_connections),
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        servers = getattr(self._server, "servers", [])
        return int(servers[0].sockets[0].getsockname()[1]) if servers else 0

    async def start(self) -> None:
        config = self._server.config
        if not config.loaded:
            config.load()
        self._server.lifespan = config.lifespan_class(config)
        try:
            await self._server.startup()
        except SystemExit as exc:  # uvicorn exits on a bind failure
            raise OSError("could not bind the REST gateway (is the port in use?)") from exc
        if self._server.should_exit:
            raise OSError("could not bind the REST gateway (is the port in use?)")
        self._task = asyncio.create_task(self._server.main_loop())

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        await self._server.shutdown()


def standalone_app(channel: grpc.aio.Channel, settings: GatewaySettings) -> Any:
    """The gateway of `python -m service.gateway`: every generated service forwarded over
    `channel`, with its own health, readiness (the target's gRPC health) and metrics."""
    services = generated_services()
    metrics = Metrics()
    return build_app(
        Remote(channel, services),
        services,
        settings,
        routes=_operations(channel, metrics),
        observe=metrics.http,
    )


def _operations(channel: grpc.aio.Channel, metrics: Metrics) -> list[Route]:
    """/healthz (this process answers), /readyz (the gRPC server says SERVING), /metrics."""
    health: Any = health_pb2_grpc.HealthStub(channel)  # the stubs type it as sync

    async def alive(request: Request) -> Response:
        return JSONResponse({"status": "SERVING"})

    async def ready(request: Request) -> Response:
        try:
            answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        except grpc.aio.AioRpcError as err:
            return JSONResponse({"status": "NOT_SERVING", "reason": err.code().name}, 503)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            return JSONResponse({"status": "NOT_SERVING", "reason": "target not serving"}, 503)
        return JSONResponse({"status": "SERVING"})

    return [
        Route("/healthz", alive, methods=["GET", "HEAD"]),
        Route("/readyz", ready, methods=["GET", "HEAD"]),
        metrics.route(),
    ]
