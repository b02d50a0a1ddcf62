"""The request pipeline every rpc runs through, whichever transport carried it.

    trace id + one log line + every exception mapped to google.rpc.Status   (outermost)
      authentication and the rpc's permission (its module's policy)
        decoding the request bytes (undecodable: INVALID_ARGUMENT, not UNKNOWN)
          the deadline (in-process REST calls; gRPC enforces its own)
            the servicer method

gRPC calls reach it through `service.edge.grpc_server`, in-process REST calls through
`service.edge.dispatch`: auth, validation, errors, idempotency (in the servicer's call
helper) and logs run once, identically for both.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, status_pb2

from service.edge import status, tracing
from service.edge.metrics import Metrics
from service.edge.modules import Auth, Rpc
from service.kit import auth, errors, logs
from service.kit.errors import DomainError

log = logging.getLogger("service.rpc")
_TRACE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
Behavior = Callable[[Any, Any], Awaitable[Message]]


@dataclass(frozen=True)
class Method:
    """One servable rpc: its names, policy, message classes and servicer method."""

    full_name: str  # "/invoicing.v1.InvoiceService/GetInvoice"
    name: str  # "GetInvoice"
    rpc: Rpc
    request_cls: type[Message]
    response_cls: type[Message]
    behavior: Behavior


@dataclass
class Call:
    """One rpc call in flight. `metadata` keys are lower case; `deadline` is in the
    running loop's clock."""

    method: Method
    metadata: Mapping[str, str]
    transport: str
    deadline: float | None = None
    trace_id: str = ""
    principal: auth.Principal | None = None
    trailing: dict[str, str] = field(default_factory=dict)


class RpcFailure(Exception):
    """A call that failed: the status to send, and the trace id it was logged under."""

    def __init__(self, rpc_status: status_pb2.Status, trace_id: str) -> None:
        super().__init__(rpc_status.message)
        self.status = rpc_status
        self.trace_id = trace_id


_call: contextvars.ContextVar[Call] = contextvars.ContextVar("call")


def current_call() -> Call:
    """The call being served (set by the pipeline)."""
    return _call.get()


class Pipeline:
    def __init__(
        self,
        authenticator: auth.Authenticator,
        constraint_errors: Mapping[str, Callable[[BaseException], DomainError]],
        metrics: Metrics | None = None,
        heavy_concurrency: int = 0,
    ) -> None:
        self._authenticator = authenticator
        self._constraint_errors = constraint_errors
        self._metrics = metrics
        # Heavy rpcs (lists) run at most this many at once; 0: no limit.
        self._heavy = asyncio.Semaphore(heavy_concurrency) if heavy_concurrency else None

    async def run(self, call: Call, request: Message | bytes) -> Message:
        trace = tracing.incoming(call.metadata)
        call.trace_id = trace.trace_id
        call.trailing["x-request-id"] = call.trace_id
        tokens = (logs.trace_id.set(call.trace_id), _call.set(call))
        started = time.perf_counter()
        name = call.method.full_name.lstrip("/")
        with tracing.span(name, trace, {"rpc.system": "grpc", "rpc.method": name}) as span:
            call.trailing["traceparent"] = tracing.traceparent(trace, tracing.span_id(span))
            try:
                response = await self._serve(call, request)
            except Exception as exc:  # every failure becomes a Status
                rpc_status = status.to_status(exc, call.trace_id, self._constraint_errors)
                self._done(call, rpc_status.code, started, exc)
                tracing.fail(span, code_pb2.Code.Name(rpc_status.code))
                raise RpcFailure(rpc_status, call.trace_id) from None
            finally:
                logs.trace_id.reset(tokens[0])
                _call.reset(tokens[1])
            self._done(call, code_pb2.OK, started, None)
        return response

    def _done(self, call: Call, code: int, started: float, exc: BaseException | None) -> None:
        seconds = time.perf_counter() - started
        if self._metrics is not None:
            self._metrics.rpc(
                call.method.full_name, code_pb2.Code.Name(code), call.transport, seconds
            )
        _log(call, code, seconds, exc)

    async def _serve(self, call: Call, request: Message | bytes) -> Message:
        method = call.method
        principal = call.principal = self._authenticate(call)
        token = auth.bind(principal)
        try:
            message = _decode(method, request) if isinstance(request, bytes) else request
            work = self._limited(method, message, call)
            if call.deadline is None:
                return await work
            return await _within(call.deadline, work)
        finally:
            auth.unbind(token)

    async def _limited(self, method: Method, message: Message, call: Call) -> Message:
        """The servicer method; a heavy one waits for a slot first (within the deadline)."""
        if self._heavy is None or not method.rpc.heavy:
            return await method.behavior(message, call)
        async with self._heavy:
            return await method.behavior(message, call)

    def _authenticate(self, call: Call) -> auth.Principal:
        principal = self._authenticator.authenticate(call.metadata.get("authorization"))
        rpc = call.method.rpc
        if rpc.auth is Auth.WEBHOOK:  # pragma: no cover - webhooks are HTTP routes, not rpcs
            raise errors.permission_denied("method not allowed", "METHOD_NOT_ALLOWED")
        principal.require(rpc.permission)
        return principal


def _decode(method: Method, raw: bytes) -> Message:
    try:
        return method.request_cls.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise DomainError(
            f"the request is not a valid {method.request_cls.DESCRIPTOR.name} message",
            "MALFORMED_REQUEST",
        ) from exc


async def _within(deadline: float, work: Awaitable[Message]) -> Message:
    try:
        async with asyncio.timeout_at(deadline) as scope:
            return await work
    except TimeoutError:
        if scope.expired():
            raise DomainError(
                "the deadline passed before the call finished",
                "DEADLINE_EXCEEDED",
                code=errors.Code.DEADLINE_EXCEEDED,
            ) from None
        raise


def trace_id(given: str | None) -> str:
    """The trace id of a request that never reached the pipeline (gateway errors)."""
    return tracing.incoming({"x-request-id": given} if given else {}).trace_id


def _log(call: Call, code: int, seconds: float, exc: BaseException | None) -> None:
    principal = call.principal
    fields = {
        "method": call.method.full_name,
        "transport": call.transport,
        "tenant_id": str(principal.tenant_id) if principal else None,
        "code": code_pb2.Code.Name(code),
        "duration_ms": round(seconds * 1000, 2),
    }
    if code == code_pb2.INTERNAL and exc is not None:
        log.error("rpc failed", extra={"fields": fields}, exc_info=exc)
    elif log.isEnabledFor(logging.INFO):
        log.info("rpc", extra={"fields": fields})
