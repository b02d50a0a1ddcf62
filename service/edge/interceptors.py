"""Server interceptors: errors + request log (outer), authentication (inner).

grpc.aio interceptors only see the method name and metadata, so each one wraps
the unary behaviour of the handler it is given.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeAlias

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from service.kit import auth, db, errors, logs

log = logging.getLogger("service.rpc")
DOMAIN = "invoicing.v1"
PUBLIC_PREFIXES = ("/grpc.health.", "/grpc.reflection.")
_TRACE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Behavior: TypeAlias = Callable[[Any, Context], Awaitable[Any]]
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable["Handler | None"]]


def _wrap(handler: Handler | None, wrapper: Callable[[Behavior], Behavior]) -> Any:
    if handler is None or handler.unary_unary is None:
        return handler
    behavior: Behavior = handler.unary_unary  # type: ignore[assignment]
    return grpc.unary_unary_rpc_method_handler(
        wrapper(behavior),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


def _metadata(context: Context, key: str) -> str | None:
    for item in context.invocation_metadata() or ():
        if item[0] == key:
            value = item[1]
            return value if isinstance(value, str) else None
    return None


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Trace id, one log line per RPC, and every exception mapped to google.rpc.Status."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method.startswith(PUBLIC_PREFIXES):
            return handler

        def wrapper(behavior: Behavior) -> Behavior:
            async def run(request: Any, context: Context) -> Any:
                tid = _trace_id(context)
                logs.trace_id.set(tid)
                started = time.perf_counter()
                try:
                    response = await behavior(request, context)
                except Exception as exc:  # every failure becomes a Status
                    status = to_status(exc, tid)
                    _log(method, status.code, started, exc)
                    await context.abort_with_status(_grpc_status(status, tid))
                    raise  # unreachable: abort_with_status raises
                context.set_trailing_metadata((("x-request-id", tid),))
                _log(method, code_pb2.OK, started, None)
                return response

            return run

        return _wrap(handler, wrapper)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Verifies the bearer token and checks the method's permission (fail closed)."""

    def __init__(self, authenticator: auth.Authenticator, permissions: Mapping[str, str]) -> None:
        self._authenticator = authenticator
        self._permissions = permissions

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Any:
        method = handler_call_details.method
        handler = await continuation(handler_call_details)
        if method.startswith(PUBLIC_PREFIXES):
            return handler
        permission = self._permissions.get(method)

        def wrapper(behavior: Behavior) -> Behavior:
            async def run(request: Any, context: Context) -> Any:
                principal = self._authenticator.authenticate(_metadata(context, "authorization"))
                if permission is None:
                    raise errors.permission_denied("method not allowed", "METHOD_NOT_ALLOWED")
                principal.require(permission)
                auth.bind(principal)
                return await behavior(request, context)

            return run

        return _wrap(handler, wrapper)


def _trace_id(context: Context) -> str:
    given = _metadata(context, "x-request-id")
    if given and _TRACE_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


_CODES: dict[errors.Code, int] = {code: getattr(code_pb2, code.value) for code in errors.Code}


def to_status(exc: BaseException, trace_id: str) -> status_pb2.Status:
    """Map any exception to a google.rpc.Status with exactly one ErrorInfo."""
    if isinstance(exc, errors.DomainError):
        return _domain_status(exc)
    mapped = _database_error(exc)
    if mapped is not None:
        return _domain_status(mapped)
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=DOMAIN, metadata={"traceId": trace_id}
    )
    return _status(code_pb2.INTERNAL, f"internal error (trace_id {trace_id})", info)


def _domain_status(exc: errors.DomainError) -> status_pb2.Status:
    info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=DOMAIN, metadata=exc.metadata)
    extra = []
    if exc.violations:
        extra.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in exc.violations
                ]
            )
        )
    return _status(_CODES[exc.code], exc.message, info, *extra)


MONEY_BACKSTOPS = frozenset(
    {
        "ck_invoices_amount_paid",
        "ck_transactions_allocated_amount",
        "ck_transactions_deleted_unallocated",
        "ck_allocations_amounts_positive",
        "ck_allocations_same_currency_exact",
    }
)


def _database_error(exc: BaseException) -> errors.DomainError | None:
    unavailable = errors.DomainError(
        "the database is unavailable", "DATABASE_UNAVAILABLE", code=errors.Code.UNAVAILABLE
    )
    if isinstance(exc, asyncpg.InterfaceError | ConnectionError | TimeoutError):
        return unavailable
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    state = db.sqlstate(exc)
    if state == db.LOCK_NOT_AVAILABLE:
        return errors.aborted("the resource is busy; retry", "LOCK_TIMEOUT")
    if state in db.RETRYABLE:
        return errors.aborted("concurrent update; retry", "CONCURRENT_UPDATE")
    if state == db.CHECK_VIOLATION and db.constraint_name(exc) in MONEY_BACKSTOPS:
        # The row-locked checks run first and name the amounts; reaching a backstop
        # means a writer bypassed them. Still no partial write, and no INTERNAL.
        return errors.failed_precondition(
            "the write would break a money invariant",
            "MONEY_INVARIANT",
            constraint=str(db.constraint_name(exc)),
        )
    if state == db.QUERY_CANCELED:
        return errors.DomainError(
            "the database did not answer in time",
            "DATABASE_TIMEOUT",
            code=errors.Code.DEADLINE_EXCEEDED,
        )
    if state is not None and state.startswith(("08", "53", "57P")):
        return unavailable
    return None


def _status(code: int, message: str, *details: Any) -> status_pb2.Status:
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    return status_pb2.Status(code=code, message=message, details=packed)


def _grpc_status(status: status_pb2.Status, trace_id: str) -> grpc.Status:
    converted = rpc_status.to_status(status)
    return _Status(
        code=converted.code,
        details=converted.details,
        trailing_metadata=(*converted.trailing_metadata, ("x-request-id", trace_id)),
    )


class _Status(grpc.Status):
    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: Any) -> None:
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


def _log(method: str, code: int, started: float, exc: BaseException | None) -> None:
    principal = auth.current_or_none()
    fields = {
        "method": method,
        "tenant_id": str(principal.tenant_id) if principal else None,
        "code": code_pb2.Code.Name(code),
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if code == code_pb2.INTERNAL and exc is not None:
        log.error("rpc failed", extra={"fields": fields}, exc_info=exc)
    elif log.isEnabledFor(logging.INFO):
        log.info("rpc", extra={"fields": fields})
