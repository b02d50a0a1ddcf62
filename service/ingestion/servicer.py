"""The webhook endpoint, `POST /v1/invoice-connections/{id}/webhooks` on the REST port:
authenticated by the provider's signature only (no JWT), body capped, answered 202 once
the event is stored (or was already), 401 for a bad signature or a stale timestamp, 404
for a connection that takes no webhooks, 413 for a body over the cap."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from service.edge.runtime import Runtime
from service.ingestion import service
from service.kit import db, ids
from service.kit.errors import DomainError

log = logging.getLogger("service.ingestion")
PATH = "/v1/invoice-connections/{id}/webhooks"


def webhook_endpoint(runtime: Runtime) -> Any:
    deps = runtime.deps
    cap = deps.settings.webhook_max_body_bytes

    async def endpoint(request: Request) -> Response:
        try:
            connection_id = ids.decode_id(
                request.path_params["id"], ids.PREFIXES["connection"], "id"
            )
        except DomainError:
            return _answer(404, "no such connection")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            return _answer(413, f"the body is over {cap} bytes")
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > cap:
                    return _answer(413, f"the body is over {cap} bytes")
        except ClientDisconnect:
            return _answer(400, "the body was cut off")
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            fresh = await service.receive_webhook(
                runtime.database,
                connection_id=connection_id,
                headers=headers,
                body=bytes(body),
                deps=deps,
            )
        except service.Rejected as rejected:
            log.info(
                "webhook refused",
                extra={"fields": {"status": rejected.status, "reason": rejected.reason}},
            )
            return _answer(rejected.status, rejected.reason)
        except db.CONNECTION_ERRORS:
            return _answer(503, "the service cannot store the event right now; retry")
        return JSONResponse(
            {"status": "received" if fresh else "duplicate", "webhook_id": headers["webhook-id"]},
            status_code=202,
        )

    return endpoint


def _answer(status: int, message: str) -> Response:
    return JSONResponse({"status": status, "message": message}, status_code=status)
