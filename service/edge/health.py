"""Health that tells the truth: every rpc needs the database, so the process is ready
(gRPC health SERVING, `/readyz` 200) exactly while the database answers, and goes
NOT_SERVING within one check interval of losing it, and back when it returns. `/healthz`
(liveness) only says the process and its event loop answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence

from grpc_health.v1 import health, health_pb2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from service.kit import db

log = logging.getLogger("service.health")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Health:
    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        database: db.Database,
        services: Sequence[str],
        *,
        interval: float,
        timeout: float,
    ) -> None:
        self.servicer = servicer
        self._database = database
        self._names = ("", *services)
        self._interval = interval
        self._timeout = timeout
        self.ready = False
        self.reason = "starting"
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Check once (so a process starts ready only with its database), then keep
        checking in the background."""
        await self.check()
        self._task = asyncio.create_task(self._watch())

    async def check(self) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                async with self._database.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except Exception as exc:  # any failure to answer is "not ready"
            await self._set(False, f"database unreachable ({type(exc).__name__})")
            return False
        await self._set(True, "")
        return True

    async def _watch(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self._interval)
            if not self._stopping:
                await self.check()

    async def _set(self, ready: bool, reason: str) -> None:
        if self._stopping or (ready == self.ready and reason == self.reason):
            return
        if ready != self.ready:
            level = logging.INFO if ready else logging.WARNING
            log.log(level, "health", extra={"fields": {"ready": ready, "reason": reason}})
            if ready and self.reason != "starting":
                # Back from an outage: connections opened before it are dead; replace them
                # instead of failing one call each.
                await self._database.pool.expire_connections()
        self.ready, self.reason = ready, reason
        for name in self._names:
            await self.servicer.set(name, SERVING if ready else NOT_SERVING)

    async def shutdown(self) -> None:
        """NOT_SERVING for good (load balancers stop sending), then stop checking."""
        self._stopping = True
        self.ready, self.reason = False, "shutting down"
        await self.servicer.enter_graceful_shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", _alive, methods=["GET", "HEAD"]),
            Route("/readyz", self._readyz, methods=["GET", "HEAD"]),
        ]

    async def _readyz(self, request: Request) -> Response:
        if self.ready:
            return _json(200, {"status": "SERVING"})
        return _json(503, {"status": "NOT_SERVING", "reason": self.reason})


async def _alive(request: Request) -> Response:
    return _json(200, {"status": "SERVING"})


def _json(status: int, body: dict[str, str]) -> Response:
    headers = {"cache-control": "no-store"}
    return Response(
        json.dumps(body), status_code=status, media_type="application/json", headers=headers
    )
