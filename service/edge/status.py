"""Exceptions -> `google.rpc.Status` with exactly one ErrorInfo (plus a BadRequest naming
the fields of an INVALID_ARGUMENT). Database errors are classified by SQLSTATE and
constraint name, never by message text; the modules map their own constraints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.kit import db, errors

DOMAIN = "invoicing.v1"
ConstraintErrors = Mapping[str, Callable[[BaseException], errors.DomainError]]
_CODES: dict[errors.Code, int] = {code: getattr(code_pb2, code.value) for code in errors.Code}


def to_status(
    exc: BaseException, trace_id: str, constraints: ConstraintErrors
) -> status_pb2.Status:
    """Map any exception to a google.rpc.Status with exactly one ErrorInfo."""
    if isinstance(exc, errors.DomainError):
        return domain_status(exc)
    mapped = database_error(exc, constraints)
    if mapped is not None:
        return domain_status(mapped)
    info = error_details_pb2.ErrorInfo(
        reason="INTERNAL", domain=DOMAIN, metadata={"traceId": trace_id}
    )
    return _status(code_pb2.INTERNAL, f"internal error (trace_id {trace_id})", info)


def domain_status(exc: errors.DomainError) -> status_pb2.Status:
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


def database_error(exc: BaseException, constraints: ConstraintErrors) -> errors.DomainError | None:
    """A database failure as a domain error, or None when it is not one we classify."""
    unavailable = errors.DomainError(
        "the database is unavailable", "DATABASE_UNAVAILABLE", code=errors.Code.UNAVAILABLE
    )
    if isinstance(exc, asyncpg.InterfaceError | asyncpg.InternalClientError | OSError):
        return unavailable  # the connection was lost or broken mid-protocol
    if isinstance(exc, TimeoutError):
        return unavailable
    if not isinstance(exc, asyncpg.PostgresError):
        return None
    state = db.sqlstate(exc)
    constraint = db.constraint_name(exc)
    if constraint is not None and constraint in constraints:
        return constraints[constraint](exc)
    if state == db.LOCK_NOT_AVAILABLE:
        return errors.aborted("the resource is busy; retry", "LOCK_TIMEOUT")
    if state in db.RETRYABLE:
        return errors.aborted("concurrent update; retry", "CONCURRENT_UPDATE")
    if state == db.QUERY_CANCELED:
        return errors.DomainError(
            "the database did not answer in time",
            "DATABASE_TIMEOUT",
            code=errors.Code.DEADLINE_EXCEEDED,
        )
    if state is not None and state.startswith(("08", "53", "57P")):
        return unavailable
    return None


def money_invariant(exc: BaseException) -> errors.DomainError:
    """A CHECK backstop of a money rule was hit: the row-locked checks run first and name
    the amounts, so reaching one means a writer bypassed them. Still no partial write,
    and no INTERNAL."""
    return errors.failed_precondition(
        "the write would break a money invariant",
        "MONEY_INVARIANT",
        constraint=str(db.constraint_name(exc)),
    )


def _status(code: int, message: str, *details: Any) -> status_pb2.Status:
    packed = []
    for detail in details:
        item = any_pb2.Any()
        item.Pack(detail)
        packed.append(item)
    return status_pb2.Status(code=code, message=message, details=packed)


def code_name(rpc_status: status_pb2.Status) -> str:
    return code_pb2.Code.Name(rpc_status.code)
