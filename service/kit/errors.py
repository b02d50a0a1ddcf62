"""Typed domain errors. One interceptor maps them to `google.rpc.Status`.

Domain code raises these; nothing below the edge imports grpc. Each error carries
an UPPER_SNAKE `reason` and a metadata dict (lowerCamel keys, string values) that
end up in the single `google.rpc.ErrorInfo` of the status.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Code(enum.Enum):
    """The canonical codes the domain uses (names match grpc.StatusCode)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    ABORTED = "ABORTED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: its path in the request (`invoice.line_items[2].quantity`)."""

    field: str
    description: str


@dataclass
class DomainError(Exception):
    """Base of every error the API reports on purpose."""

    message: str
    reason: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    violations: tuple[FieldViolation, ...] = ()
    code: Code = Code.INVALID_ARGUMENT

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def invalid(
    field_path: str, description: str, *, reason: str = "INVALID_FIELD", **metadata: str
) -> DomainError:
    """An INVALID_ARGUMENT naming one field."""
    return DomainError(
        message=f"{field_path}: {description}",
        reason=reason,
        metadata={"field": field_path, **metadata},
        violations=(FieldViolation(field_path, description),),
    )


def not_found(resource: str, resource_id: str) -> DomainError:
    """NOT_FOUND with identical bytes whether the id is unknown or another tenant's."""
    return DomainError(
        message=f"{resource} {resource_id} not found",
        reason=f"{resource.upper()}_NOT_FOUND",
        metadata={"id": resource_id},
        code=Code.NOT_FOUND,
    )


def failed_precondition(message: str, reason: str, **metadata: str) -> DomainError:
    return DomainError(message, reason, metadata, code=Code.FAILED_PRECONDITION)


def already_exists(message: str, reason: str, **metadata: str) -> DomainError:
    return DomainError(message, reason, metadata, code=Code.ALREADY_EXISTS)


def aborted(message: str, reason: str, **metadata: str) -> DomainError:
    return DomainError(message, reason, metadata, code=Code.ABORTED)


def permission_denied(message: str, reason: str, **metadata: str) -> DomainError:
    return DomainError(message, reason, metadata, code=Code.PERMISSION_DENIED)


def unauthenticated(message: str, reason: str = "UNAUTHENTICATED") -> DomainError:
    return DomainError(message, reason, {}, code=Code.UNAUTHENTICATED)


def unimplemented(method: str) -> DomainError:
    return DomainError(
        f"{method} is not implemented yet",
        "NOT_IMPLEMENTED",
        {"method": method},
        code=Code.UNIMPLEMENTED,
    )
