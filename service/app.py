"""Builds and runs the process: database, modules, gRPC server, REST gateway, worker.
Nothing here runs at import time, and nothing here names a resource: the modules come
from `service.registry`."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from starlette.routing import Route

from service import registry
from service.edge import grpc_server, reflection, tracing
from service.edge.calls import Calls
from service.edge.dispatch import InProcess
from service.edge.health import Health
from service.edge.metrics import Metrics
from service.edge.modules import Module
from service.edge.pipeline import Pipeline
from service.edge.runtime import Runtime
from service.gateway.server import GatewaySettings, RunningGateway, build_app
from service.kit import auth, db
from service.kit.config import Settings
from service.kit.deps import Deps
from service.kit.keyring import KeyRing
from service.kit.pagination import CursorCodec
from service.worker.runner import Outcome, Runner

log = logging.getLogger("service")


@dataclass
class Running:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    database: db.Database
    runtime: Runtime
    dispatcher: InProcess
    monitor: Health
    metrics: Metrics
    gateway: RunningGateway | None = None
    worker: asyncio.Task[None] | None = None
    worker_stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def gateway_port(self) -> int:
        return self.gateway.port if self.gateway is not None else 0

    @property
    def modules(self) -> Sequence[Module]:
        return self.runtime.modules


def cursor_secret(settings: Settings) -> bytes:
    if settings.cursor_secret:
        return settings.cursor_secret.encode()
    # Derived from the dev secret so cursors survive restarts of a dev server.
    return hashlib.sha256(b"cursor|" + auth.dev_secret(settings.data_dir)).digest()


async def start(settings: Settings, database_url: str) -> Running:
    """Create the pool, the modules and the server; bind the ports and start serving."""
    tracing.configure()
    database = await db.Database.connect(
        database_url,
        pool_size=settings.db_pool_size,
        statement_timeout_ms=settings.db_statement_timeout_ms,
    )
    try:
        running = await _start(settings, database)
    except BaseException:
        await database.close()
        raise
    try:
        await _start_gateway(running, settings)
    except BaseException:
        await stop(running, 0)
        raise
    if settings.worker_enabled:
        _start_worker(running, settings)
    return running


def build_runtime(settings: Settings, database: db.Database) -> Runtime:
    """The modules and what their servicers, routes and tasks are built with."""
    keys = KeyRing.from_settings(settings)
    generated = keys.path is not None and settings.secrets_keyring_file is None
    if generated and not settings.embedded_database:
        log.warning(
            "connection secrets are sealed with a key ring generated at %s: set "
            "SECRETS_KEYRING_FILE to a key ring kept outside the data dir",
            keys.path,
        )
    deps = Deps(cursors=CursorCodec(cursor_secret(settings)), settings=settings, keys=keys)
    ttl = timedelta(hours=settings.idempotency_ttl_hours)
    calls = Calls(database, idempotency_ttl=ttl, keys=keys)
    return Runtime(calls=calls, deps=deps, database=database, modules=registry.discover())


async def _start(settings: Settings, database: db.Database) -> Running:
    runtime = build_runtime(settings, database)
    modules = runtime.modules
    metrics = Metrics()
    authenticator = auth.Authenticator(key=auth.load_key(settings), settings=settings)
    pipeline = Pipeline(
        authenticator,
        registry.constraint_errors(modules),
        metrics,
        heavy_concurrency=settings.heavy_rpc_concurrency,
    )
    methods = registry.methods(modules, runtime)
    server = grpc.aio.server(
        options=grpc_server.server_options(settings),
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
    )
    server.add_generic_rpc_handlers(grpc_server.generic_handlers(methods, pipeline))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = [service.full_name for service in registry.services(modules)]
    reflection.enable(server, names)
    port = grpc_server.bind(server, settings)
    await server.start()
    monitor = Health(
        health_servicer,
        database,
        names,
        interval=settings.health_check_interval_ms / 1000,
        timeout=settings.health_check_timeout_ms / 1000,
    )
    await monitor.start()
    metrics.watch(database, lambda: monitor.ready)
    return Running(
        server=server,
        port=port,
        health=health_servicer,
        database=database,
        runtime=runtime,
        dispatcher=InProcess(methods, pipeline),
        monitor=monitor,
        metrics=metrics,
    )


async def _start_gateway(running: Running, settings: Settings) -> None:
    """The REST gateway in this process, dispatching to the handlers in process."""
    if not settings.gateway_enabled:
        return
    if settings.tls_client_ca_file is not None:
        log.warning("mutual TLS is on: start the gateway standalone with a client certificate")
        return
    runtime = running.runtime
    routes = [
        *running.monitor.routes(),
        running.metrics.route(),
        *(
            Route(r.path, r.endpoint(runtime), methods=[r.method], name=r.name or None)
            for r in registry.routes(runtime.modules)
        ),
    ]
    gateway_settings = GatewaySettings.from_settings(settings)
    services = registry.services(runtime.modules)
    app = build_app(
        running.dispatcher,
        services,
        gateway_settings,
        routes=routes,
        observe=running.metrics.http,
    )
    running.gateway = RunningGateway(app, gateway_settings)
    await running.gateway.start()


def _start_worker(running: Running, settings: Settings) -> None:
    runner = build_runner(running.runtime, settings, running.metrics)
    running.worker = asyncio.create_task(runner.run_until(running.worker_stop))


def build_runner(runtime: Runtime, settings: Settings, metrics: Metrics | None = None) -> Runner:
    """A worker running every module's tasks."""

    def observe(outcome: Outcome) -> None:
        if metrics is None:
            return
        state = "ok" if outcome.error is None else "failed"
        items = outcome.result.count if outcome.result else 0
        metrics.task(
            outcome.task, state if outcome.settled else "lost_lease", items, outcome.seconds
        )

    return Runner(
        runtime,
        registry.tasks(runtime.modules),
        batch=settings.worker_batch,
        idle=settings.worker_idle_ms / 1000,
        observe=observe,
    )


async def stop(running: Running, grace: float) -> None:
    """Health NOT_SERVING, let in-flight RPCs and tasks finish within `grace`, close."""
    await running.monitor.shutdown()
    running.worker_stop.set()
    if running.gateway is not None:
        await running.gateway.stop()
    await running.server.stop(grace)
    if running.worker is not None:
        try:
            await asyncio.wait_for(running.worker, timeout=max(grace, 0.1))
        except (TimeoutError, asyncio.CancelledError):
            log.warning("the worker did not stop in time; its leases will expire")
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
