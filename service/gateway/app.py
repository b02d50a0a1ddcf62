"""The gateway's ASGI application: route, transcode, dispatch, answer JSON.

It knows no resource: everything comes from the bindings (the `google.api.http` rules).
A `Dispatcher` runs the rpc: in the server process the registered handler through the
same pipeline as gRPC (`service.edge.dispatch`), standalone a gRPC channel
(`service.gateway.remote`). Auth, validation, errors and transactions run once, in the
pipeline, for both transports. Requests, responses and static files are Starlette's;
the router (`routes.py`) is ours.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import quote

from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2  # noqa: F401  (detail types in the pool)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from service.edge import tracing
from service.edge.pipeline import RpcFailure
from service.gateway import dialects, openapi, transcode
from service.gateway.bindings import (
    Binding,
    etag_path,
    has_request_id,
    returns_etag,
    success_status,
)
from service.gateway.dialects import jsontext
from service.gateway.routes import MethodNotAllowed, RouteNotFound, Router
from service.kit.etags import normalize_etag

log = logging.getLogger("service.gateway")
access_log = logging.getLogger("service.gateway.access")

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
_TIMEOUT = re.compile(r"(\d{1,8})([HMSmun])")
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_MAX_TIMEOUT_S = 300.0
JSON = "application/json"
# JSON:API's media type is JSON too (seed 000 and 003 clients send it); neither is a CORS
# "simple" content type, so the same-site check holds for both.
JSON_TYPES = frozenset({JSON, "application/vnd.api+json"})
DOMAIN = "invoicing.v1"
ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# An Authorization value is a token68 credential: printable ASCII only (RFC 9110 §11).
_AUTHORIZATION = re.compile(r"[\x21-\x7e]+ [\x21-\x7e]+")


class Dispatcher(Protocol):
    """Runs one rpc; raises `RpcFailure` with the google.rpc.Status of a failed call."""

    def __call__(
        self,
        full_method: str,
        request: Message,
        metadata: Sequence[tuple[str, str]],
        timeout: float | None,
    ) -> Awaitable[tuple[Message, Mapping[str, str]]]: ...


@dataclass
class GatewayConfig:
    max_body_bytes: int = 1024 * 1024
    default_timeout_s: float = 30.0
    comments: Mapping[str, str] = field(default_factory=dict)
    examples: Mapping[str, Any] = field(default_factory=dict)
    allowed_origins: frozenset[str] = frozenset()
    # Called once per request with (method, route template, status, seconds).
    observe: Callable[[str, str, int, float], None] | None = None


@dataclass(frozen=True)
class _Rpc:
    binding: Binding
    request_cls: type[Message]
    has_request_id: bool
    etag_path: tuple[str, ...] | None  # where If-Match goes in the request
    returns_etag: bool  # the response carries the resource's etag
    location: str | None  # for creates: the template of the created resource's URL
    dialect: dialects.Dialect | None  # a seed path's wire format; None: canonical JSON


class HttpError(Exception):
    """An error the gateway answers itself (routing, body, headers) or relays from the
    rpc (`details` then carry the rpc's ErrorInfo); `reason` names it in an ErrorInfo."""

    def __init__(
        self, status: int, code: str, message: str, *, reason: str = "", **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra
        self.reason = reason or code


class Gateway:
    """ASGI app: the bindings' routes first; docs, static assets and the modules' extra
    routes (`routes`) on a Starlette router behind them."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        bindings: Sequence[Binding],
        config: GatewayConfig,
        *,
        routes: Sequence[BaseRoute] = (),
    ) -> None:
        self._router = Router(bindings)
        self._dispatch = dispatcher
        self._config = config
        self._rpcs = {b: _rpc(b, bindings) for b in bindings}
        document = openapi.build_openapi(
            bindings, comments=config.comments, examples=config.examples
        )
        self._openapi = json.dumps(document).encode()
        self._docs = openapi.docs_html().encode()
        self._other = Starlette(
            routes=[
                Route("/openapi.json", self._serve_openapi, methods=["GET"]),
                Route("/docs", self._serve_docs, methods=["GET"]),
                Mount("/docs/static", StaticFiles(directory=openapi.static_dir())),
                *routes,
            ],
            exception_handlers={404: _not_found, 405: _method_not_allowed},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._other(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope, receive)
        trace = _trace(request)
        route = "unmatched"
        try:
            match = self._match(scope)
            route = match.binding.template
        except RouteNotFound:

            def done(status: int) -> None:
                self._done(request, status, started, trace)

            await self._other(scope, receive, _status_spy(send, done))
            return
        except HttpError as err:  # 405: the seed's error format on a seed path
            response = _error_response(err, trace, dialects.for_path(request.url.path))
        else:
            response = await self._answer(request, match, trace)
        await response(scope, receive, send)
        self._done(request, response.status_code, started, trace, route)

    async def _answer(self, request: Request, match: Any, trace: str) -> Response:
        dialect = self._rpcs[match.binding].dialect
        try:
            return await self._handle(request, match, trace)
        except HttpError as err:
            return _error_response(err, trace, dialect)
        except Exception:  # never a plain-text 500, never a stack trace on the wire
            log.exception("gateway request failed", extra={"fields": {"trace_id": trace}})
            internal = HttpError(500, "INTERNAL", f"internal error (trace_id {trace})")
            return _error_response(internal, trace, dialect)

    def _done(
        self, request: Request, status: int, started: float, trace: str, route: str = ""
    ) -> None:
        """The access log line and the request's metrics."""
        route = route or request.scope.get("route_path", "") or _other_route(request)
        seconds = time.perf_counter() - started
        if self._config.observe is not None:
            self._config.observe(request.method, route, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            fields = {
                "method": request.method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "trace_id": trace,
            }
            access_log.info("http", extra={"fields": fields})

    async def _handle(self, request: Request, match: Any, trace: str) -> Response:
        rpc = self._rpcs[match.binding]
        metadata = _metadata(request, trace, self._config.allowed_origins)
        body = await _read_body(request, self._config.max_body_bytes, rpc.binding)
        message = _build(rpc, match.variables, request, body)
        if_match = _if_match(rpc, request, message)
        timeout = _timeout(request, self._config.default_timeout_s)
        try:
            response, trailing = await self._dispatch(
                rpc.binding.full_method, message, metadata, timeout
            )
        except RpcFailure as failure:
            raise _from_failure(failure, precondition=if_match) from None
        status = success_status(rpc.binding)
        headers = {"x-request-id": trailing.get("x-request-id", trace)}
        if "traceparent" in trailing:
            headers["traceparent"] = trailing["traceparent"]
        if trailing.get("idempotent-replayed") == "true":
            headers["idempotent-replayed"] = "true"
        etag = getattr(response, "etag", "") if rpc.returns_etag else ""
        if etag:
            headers["etag"] = etag
            if request.method == "GET" and _matches(request.headers.get("if-none-match"), etag):
                return Response(status_code=304, headers=headers)
        created_id = getattr(response, "id", "") if rpc.location else ""
        if status == 201 and rpc.location and created_id:
            headers["location"] = rpc.location.replace("{id}", quote(created_id, safe=""))
        if status == 204:
            return Response(status_code=204, headers=headers)
        if rpc.dialect is None:
            payload = transcode.to_json(response, rpc.binding)
            return Response(payload, status_code=status, headers=headers, media_type=JSON)
        query = request.scope.get("query_string", b"").decode("latin-1")
        url = request.url.path + (f"?{query}" if query else "")
        written = rpc.dialect.write(rpc.binding, message, response, url)
        headers.update(written.headers)
        payload = jsontext.dumps(written.body)
        return Response(payload, status_code=status, headers=headers, media_type=JSON)

    def _match(self, scope: Scope) -> Any:
        raw = scope.get("raw_path") or scope["path"].encode()
        # Keep escapes as sent (the router decodes per segment); encode raw non-ASCII.
        raw_path = quote(raw.split(b"?", 1)[0], safe="/%:@!$&'()*+,;=-._~")
        try:
            return self._router.match(scope["method"], raw_path)
        except MethodNotAllowed as exc:
            raise HttpError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{scope['method']} is not allowed on {scope['path']}",
                allow=", ".join(exc.allowed),
            ) from exc

    async def _serve_openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type=JSON)

    async def _serve_docs(self, request: Request) -> Response:
        return Response(self._docs, media_type="text/html; charset=utf-8")


def _rpc(binding: Binding, bindings: Sequence[Binding]) -> _Rpc:
    request_cls: type[Message] = message_factory.GetMessageClass(binding.rpc.input_type)
    return _Rpc(
        binding,
        request_cls,
        has_request_id(binding),
        etag_path=etag_path(binding),
        returns_etag=returns_etag(binding),
        location=_location(binding, bindings) if success_status(binding) == 201 else None,
        dialect=dialects.for_binding(binding),
    )


def _location(create: Binding, bindings: Sequence[Binding]) -> str | None:
    """The GET `.../{id}` route returning what `create` returns, under the same collection
    path when there is one (seed paths answer with seed paths)."""
    output = create.rpc.output_type.full_name
    candidates = [
        b.template
        for b in bindings
        if b.method == "GET"
        and b.rpc.output_type.full_name == output
        and b.template.endswith("/{id}")
        and "id" in create.rpc.output_type.fields_by_name
    ]
    for template in candidates:
        if template.removesuffix("/{id}") == create.template:
            return template
    return candidates[0] if candidates else None


def _build(rpc: _Rpc, variables: Mapping[str, str], request: Request, body: bytes) -> Message:
    message = rpc.request_cls()
    dialect = rpc.dialect
    try:
        adapt = dialect.read_body if dialect is not None else None
        data = transcode.body_fields(rpc.binding, message, body, adapt=adapt)
        transcode.fill_update_mask(rpc.binding, message, data)
        bound = transcode.path_fields(message, variables)
        query = request.scope.get("query_string", b"").decode("latin-1")
        adapt_query = dialect.read_query if dialect is not None else None
        transcode.query_fields(rpc.binding, message, query, bound=bound, adapt=adapt_query)
    except transcode.BadRequest as exc:
        raise HttpError(
            400, "INVALID_ARGUMENT", exc.message, reason="INVALID_REQUEST", field=exc.field
        ) from exc
    key = request.headers.get("idempotency-key")
    if key is not None and rpc.has_request_id:
        current = getattr(message, "request_id")  # noqa: B009
        if current and current != key:
            raise HttpError(
                400,
                "INVALID_ARGUMENT",
                "Idempotency-Key and request_id disagree",
                field="request_id",
            )
        setattr(message, "request_id", key)  # noqa: B010
    return message


def _if_match(rpc: _Rpc, request: Request, message: Message) -> bool:
    """Put If-Match into the request's etag field (the service checks it under the row
    lock); True when a stale one should answer 412 rather than 409."""
    value = request.headers.get("if-match")
    if value is None or value.strip() == "*":
        return False
    if rpc.etag_path is None:
        raise HttpError(
            400,
            "INVALID_ARGUMENT",
            "If-Match is not supported here: this operation has no precondition",
            reason="PRECONDITION_NOT_SUPPORTED",
            field="if-match",
        )
    if "," in value:
        raise HttpError(
            400,
            "INVALID_ARGUMENT",
            "If-Match takes one entity tag here",
            reason="INVALID_PRECONDITION",
            field="if-match",
        )
    *parents, name = rpc.etag_path
    target: Any = message
    for parent in parents:
        target = getattr(target, parent)
    current = getattr(target, name)
    if current and normalize_etag(current) != normalize_etag(value.strip()):
        raise HttpError(
            400,
            "INVALID_ARGUMENT",
            "If-Match and the body's etag disagree",
            reason="INVALID_PRECONDITION",
            field="if-match",
        )
    setattr(target, name, value.strip())
    return True


def _matches(header: str | None, etag: str) -> bool:
    """If-None-Match (weak comparison, RFC 9110 §13.1.2): `*` or any listed tag."""
    if header is None:
        return False
    tags = [tag.strip() for tag in header.split(",")]
    return "*" in tags or normalize_etag(etag) in {normalize_etag(tag) for tag in tags}


def _trace(request: Request) -> str:
    headers = request.headers
    carrier = {k: headers[k] for k in ("traceparent", "x-request-id") if k in headers}
    return tracing.incoming(carrier).trace_id


def _other_route(request: Request) -> str:
    """Routes the Starlette router serves, named by their path (docs, health, metrics,
    the modules' routes); anything else is "unmatched" (no per-path label explosion)."""
    path = request.url.path
    for known in ("/openapi.json", "/docs", "/healthz", "/readyz", "/metrics"):
        if path == known or path.startswith(known + "/"):
            return known
    return "unmatched"


def _status_spy(send: Send, done: Callable[[int], None]) -> Send:
    async def spy(message: Any) -> None:
        if message["type"] == "http.response.start":
            done(int(message["status"]))
        await send(message)

    return spy


def _metadata(
    request: Request, trace: str, allowed_origins: frozenset[str]
) -> tuple[tuple[str, str], ...]:
    """Authorization (header, or a `session` cookie holding a JWT), the trace id and the
    W3C trace context. Every other header is dropped."""
    md = [("x-request-id", trace)]
    traceparent = request.headers.get("traceparent")
    if traceparent is not None:
        md.append(("traceparent", traceparent))
    authorization = request.headers.get("authorization")
    if authorization is None:
        token = request.cookies.get("session")
        if token:
            _check_same_site(request, allowed_origins)
            authorization = f"Bearer {token}"
    if authorization is not None:
        if not _AUTHORIZATION.fullmatch(authorization):
            raise HttpError(
                401,
                "UNAUTHENTICATED",
                "authorization must be 'Bearer <token>' in printable ASCII",
                reason="INVALID_TOKEN",
            )
        md.append(("authorization", authorization))
    return tuple(md)


def _check_same_site(request: Request, allowed_origins: frozenset[str]) -> None:
    """A browser attaches the session cookie to cross-site requests too, so an unsafe
    request authenticated by it must prove it is not one: no foreign Origin, and for a
    POST a JSON content type (a plain HTML form or a "simple" fetch can POST across sites
    without a CORS preflight, but only as a form or text). PATCH, PUT and DELETE are never
    simple requests: a cross-site one needs a preflight, which CORS refuses, so seed 004's
    `curl -X DELETE -H "Cookie: session=…"` works as documented."""
    if request.method in SAFE_METHODS:
        return
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site", "")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    foreign = origin is not None and origin != own and origin not in allowed_origins
    not_json = request.method == "POST" and content_type not in JSON_TYPES
    if not_json or foreign or (fetch_site == "cross-site" and not origin):
        raise HttpError(
            403,
            "PERMISSION_DENIED",
            "a request authenticated by the session cookie must be same-site and send "
            "Content-Type: application/json (or use the Authorization header)",
            reason="CROSS_SITE_REQUEST",
        )


def _timeout(request: Request, default: float) -> float:
    raw = request.headers.get("grpc-timeout")
    if raw is None:
        return default
    match = _TIMEOUT.fullmatch(raw.strip())
    if match is None:
        raise HttpError(
            400,
            "INVALID_ARGUMENT",
            "Grpc-Timeout must look like 10S or 500m",
            reason="INVALID_TIMEOUT",
            field="grpc-timeout",
        )
    return min(int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)], _MAX_TIMEOUT_S)


async def _read_body(request: Request, limit: int, binding: Binding) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HttpError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HttpError(413, "PAYLOAD_TOO_LARGE", f"the body exceeds {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if binding.body and body.strip():
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            raise HttpError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    return body


def _from_failure(failure: RpcFailure, *, precondition: bool = False) -> HttpError:
    code = code_pb2.Code.Name(failure.status.code)
    details = [
        json_format.MessageToDict(d, preserving_proto_field_name=True)
        for d in failure.status.details
    ]
    stale = any(d.get("reason") == "ETAG_MISMATCH" for d in details)
    http_status = 412 if precondition and stale else GRPC_TO_HTTP.get(code, 500)
    return HttpError(
        http_status,
        code,
        failure.status.message,
        details=details,
        trace_id=failure.trace_id or None,
    )


def error_body(err: HttpError, trace_id: str) -> bytes:
    return json.dumps(
        error_document(err, trace_id), separators=(",", ":"), ensure_ascii=False
    ).encode()


def error_document(err: HttpError, trace_id: str) -> dict[str, Any]:
    details = list(err.extra.get("details") or [])
    if not any(d.get("@type") == ERROR_INFO for d in details):
        info = {"@type": ERROR_INFO, "reason": err.reason, "domain": DOMAIN, "metadata": {}}
        details.insert(0, info)
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
    return body


def _title(status: int) -> str:
    if status == 499:
        return "Client Closed Request"
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # pragma: no cover
        return "Error"


def _error_response(
    err: HttpError, trace: str, dialect: dialects.Dialect | None = None
) -> Response:
    headers = {"x-request-id": err.extra.get("trace_id") or trace}
    if "allow" in err.extra:
        headers["allow"] = err.extra["allow"]
    if dialect is None:
        body = error_body(err, trace)
    else:
        body = jsontext.dumps(dialect.error(error_document(err, trace)))
    return Response(body, status_code=err.status, headers=headers, media_type=JSON)


async def _not_found(request: Request, exc: Exception) -> Response:
    trace = _trace(request)
    err = HttpError(404, "NOT_FOUND", f"no route for {request.url.path}", reason="NO_ROUTE")
    return _error_response(err, trace, dialects.for_path(request.url.path))


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    trace = _trace(request)
    err = HttpError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here")
    return _error_response(err, trace)
