"""The gateway's ASGI application: route, transcode, forward over gRPC, answer JSON.

It knows no resource: everything comes from the bindings. Auth, validation, errors and
transactions run once, in the gRPC server, for both transports.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import quote

import grpc
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2  # noqa: F401  (detail types in the pool)
from grpc_status import rpc_status

from service.gateway import openapi, transcode
from service.gateway.bindings import Binding, success_status
from service.gateway.routes import MethodNotAllowed, RouteNotFound, Router

log = logging.getLogger("service.gateway")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

GRPC_TO_HTTP = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
_TRACE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
JSON = "application/json"


@dataclass
class GatewayConfig:
    max_body_bytes: int = 1024 * 1024
    default_timeout_s: float = 30.0
    comments: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Rpc:
    binding: Binding
    request_cls: type[Message]
    call: Any  # grpc.aio.UnaryUnaryMultiCallable
    has_request_id: bool


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class Gateway:
    """ASGI app. `channel` reaches the gRPC server (loopback in `make run`)."""

    def __init__(
        self, channel: grpc.aio.Channel, bindings: Sequence[Binding], config: GatewayConfig
    ) -> None:
        self._router = Router(bindings)
        self._config = config
        self._rpcs = {b: _rpc(channel, b) for b in bindings}
        self._openapi = json.dumps(
            openapi.build_openapi(bindings, comments=config.comments)
        ).encode()
        self._static = _load_assets(openapi.static_dir())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are not served
            return
        trace_id = _trace_id(scope)
        try:
            await self._handle(scope, receive, send, trace_id)
        except HttpError as err:
            await _send_error(send, err, trace_id)

    async def _handle(self, scope: Scope, receive: Receive, send: Send, trace_id: str) -> None:
        path = scope["path"]
        if path in ("/openapi.json", "/docs") or path.startswith("/docs/static/"):
            await self._serve_docs(path, send)
            return
        match = self._match(scope)
        rpc = self._rpcs[match.binding]
        body = await _read_body(receive, scope, self._config.max_body_bytes, rpc.binding)
        request = self._build(rpc, match.variables, scope, body)
        response, trailing = await self._forward(rpc, request, scope, trace_id)
        status = success_status(rpc.binding)
        payload = b"" if status == 204 else transcode.to_json(response, rpc.binding)
        await _send(send, status, payload, trailing.get("x-request-id", trace_id))

    def _match(self, scope: Scope) -> Any:
        raw = scope.get("raw_path") or scope["path"].encode()
        # Keep escapes as sent (the router decodes per segment); encode raw non-ASCII.
        raw_path = quote(raw.split(b"?", 1)[0], safe="/%:@!$&'()*+,;=-._~")
        try:
            return self._router.match(scope["method"], raw_path)
        except RouteNotFound as exc:
            raise HttpError(404, "NOT_FOUND", f"no route for {scope['path']}") from exc
        except MethodNotAllowed as exc:
            raise HttpError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{scope['method']} is not allowed on {scope['path']}",
                allow=", ".join(exc.allowed),
            ) from exc

    def _build(self, rpc: _Rpc, variables: Mapping[str, str], scope: Scope, body: bytes) -> Message:
        request = rpc.request_cls()
        try:
            data = transcode.body_fields(rpc.binding, request, body)
            transcode.fill_update_mask(rpc.binding, request, data)
            bound = transcode.path_fields(request, variables)
            query = scope.get("query_string", b"").decode("latin-1")
            transcode.query_fields(rpc.binding, request, query, bound=bound)
        except transcode.BadRequest as exc:
            raise HttpError(400, "INVALID_ARGUMENT", exc.message, field=exc.field) from exc
        key = _header(scope, b"idempotency-key")
        if key is not None and rpc.has_request_id:
            current = getattr(request, "request_id")  # noqa: B009
            if current and current != key:
                raise HttpError(
                    400,
                    "INVALID_ARGUMENT",
                    "Idempotency-Key and request_id disagree",
                    field="request_id",
                )
            setattr(request, "request_id", key)  # noqa: B010
        return request

    async def _forward(
        self, rpc: _Rpc, request: Message, scope: Scope, trace_id: str
    ) -> tuple[Message, dict[str, str]]:
        metadata = _metadata(scope, trace_id)
        timeout = _timeout(scope, self._config.default_timeout_s)
        call: Any = rpc.call(request, metadata=metadata, timeout=timeout)
        try:
            response = await call
        except grpc.aio.AioRpcError as err:
            raise _from_grpc(err) from err
        trailing = {k: v for k, v in (await call.trailing_metadata() or ()) if isinstance(v, str)}
        return response, trailing

    async def _serve_docs(self, path: str, send: Send) -> None:
        if path == "/openapi.json":
            await _send(send, 200, self._openapi, None)
        elif path == "/docs":
            html = openapi.docs_html().encode()
            await _send(send, 200, html, None, content_type="text/html; charset=utf-8")
        else:
            await _send_static(send, self._static, path.removeprefix("/docs/static/"))


def _rpc(channel: grpc.aio.Channel, binding: Binding) -> _Rpc:
    request_cls = message_factory.GetMessageClass(binding.rpc.input_type)
    response_cls = message_factory.GetMessageClass(binding.rpc.output_type)
    call: Any = channel.unary_unary(
        binding.full_method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    has_request_id = "request_id" in binding.rpc.input_type.fields_by_name
    return _Rpc(binding, request_cls, call, has_request_id)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _trace_id(scope: Scope) -> str:
    given = _header(scope, b"x-request-id")
    return given if given and _TRACE_ID.fullmatch(given) else uuid.uuid4().hex


def _metadata(scope: Scope, trace_id: str) -> tuple[tuple[str, str], ...]:
    """Authorization (header, or a `session` cookie holding a JWT) and the trace id.
    Every other header is dropped."""
    md = [("x-request-id", trace_id)]
    authorization = _header(scope, b"authorization")
    if authorization is None:
        token = _cookie(_header(scope, b"cookie") or "", "session")
        if token:
            authorization = f"Bearer {token}"
    if authorization is not None:
        md.append(("authorization", authorization))
    return tuple(md)


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def _timeout(scope: Scope, default: float) -> float:
    raw = _header(scope, b"grpc-timeout")
    if raw is None:
        return default
    match = _TIMEOUT.fullmatch(raw.strip())
    if match is None:
        raise HttpError(400, "INVALID_ARGUMENT", "Grpc-Timeout must look like 10S or 500m")
    return min(int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)], 300.0)


async def _read_body(receive: Receive, scope: Scope, limit: int, binding: Binding) -> bytes:
    declared = _header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    if binding.body and body.strip():
        content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
        if content_type != JSON:
            raise HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    return body


def _from_grpc(err: grpc.aio.AioRpcError) -> HttpError:
    code = err.code().name
    status = rpc_status.from_call(err)  # type: ignore[arg-type]  # works on AioRpcError
    details = []
    if status is not None:
        details = [
            json_format.MessageToDict(d, preserving_proto_field_name=True) for d in status.details
        ]
    trailing = {k: v for k, v in (err.trailing_metadata() or ()) if isinstance(v, str)}
    return HttpError(
        GRPC_TO_HTTP.get(code, 500),
        code,
        err.details() or "",
        details=details,
        trace_id=trailing.get("x-request-id"),
    )


def error_body(err: HttpError, trace_id: str) -> bytes:
    details = list(err.extra.get("details") or [])
    if err.extra.get("field"):
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "field_violations": [{"field": err.extra["field"], "description": err.message}],
            }
        )
    body = {
        "code": err.code,
        "status": err.status,
        "title": _title(err.status),
        "message": err.message,
        "details": details,
        "meta": {"trace_id": err.extra.get("trace_id") or trace_id},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def _title(status: int) -> str:
    if status == 499:
        return "Client Closed Request"
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # pragma: no cover
        return "Error"


async def _send_error(send: Send, err: HttpError, trace_id: str) -> None:
    headers = [(b"allow", err.extra["allow"].encode())] if "allow" in err.extra else []
    trace = err.extra.get("trace_id") or trace_id
    await _send(send, err.status, error_body(err, trace_id), trace, extra_headers=headers)


async def _send(
    send: Send,
    status: int,
    payload: bytes,
    trace_id: str | None,
    *,
    content_type: str = JSON,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    headers = [*extra_headers]
    if status != 204:
        headers += [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(payload)).encode()),
        ]
    if trace_id:
        headers.append((b"x-request-id", trace_id.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload if status != 204 else b""})


_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


_ASSETS = (
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "swagger-ui.css",
    "favicon-32x32.png",
)


def _load_assets(directory: Path) -> dict[str, tuple[bytes, str]]:
    """The docs page's assets, read once at startup (never a path from the request)."""
    return {
        name: ((directory / name).read_bytes(), _STATIC_TYPES[Path(name).suffix])
        for name in _ASSETS
    }


async def _send_static(send: Send, assets: Mapping[str, tuple[bytes, str]], name: str) -> None:
    if name not in assets:
        raise HttpError(404, "NOT_FOUND", f"no docs asset {name!r}")
    payload, content_type = assets[name]
    await _send(send, 200, payload, None, content_type=content_type)
