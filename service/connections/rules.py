"""Connection rules: plain values in, values or domain errors out. No I/O."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.kit.etags import etag_of
from service.kit.keyring import Secret

OK = "ok"
FAILING = "failing"
NEEDS_CREDENTIALS = "needs_credentials"
API_KEY = "api_key"
WEBHOOK_SECRET = "webhook_secret"
SECRET_FIELDS = (API_KEY, WEBHOOK_SECRET)


class State(enum.Enum):
    """What a connection can do right now (ConnectionState), most important first."""

    DELETED = "deleted"
    DISABLED = "disabled"
    SECRETS_UNAVAILABLE = "secrets_unavailable"
    NEEDS_CREDENTIALS = "needs_credentials"
    FAILING = "failing"
    OK = "ok"


@dataclass(frozen=True)
class Connection:
    id: uuid.UUID
    tenant_id: uuid.UUID
    provider: str
    active: bool
    endpoint_url: str
    api_key_kid: str | None
    api_key_sealed: bytes | None
    webhook_secret_kid: str | None
    webhook_secret_sealed: bytes | None
    health: str
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_poll_at: datetime | None
    last_polled_at: datetime | None
    poll_cursor: str | None
    poll_mark: datetime | None
    last_poll: Any
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    deleted_at: datetime | None
    deleted_by: str | None

    def __repr__(self) -> str:  # the sealed bytes have no business in a log line either
        return f"Connection(id={self.id}, tenant_id={self.tenant_id}, provider={self.provider!r})"

    @property
    def etag(self) -> str:
        return etag_of(self.version)

    @property
    def has_credentials(self) -> bool:
        return self.api_key_sealed is not None

    @property
    def has_webhook_secret(self) -> bool:
        return self.webhook_secret_sealed is not None


@dataclass(frozen=True)
class View:
    """A connection as callers see it: the row and its state."""

    connection: Connection
    state: State


@dataclass(frozen=True)
class ConnectionDraft:
    provider: str
    api_key: Secret | None
    webhook_secret: Secret | None
    active: bool
    endpoint_url: str


@dataclass(frozen=True)
class Changes:
    """An update: None leaves a field alone; `webhook_secret` Secret("") removes it."""

    api_key: Secret | None = None
    webhook_secret: Secret | None = None
    active: bool | None = None
    endpoint_url: str | None = None

    @property
    def empty(self) -> bool:
        return (
            self.api_key is None
            and self.webhook_secret is None
            and self.active is None
            and self.endpoint_url is None
        )


def state_of(connection: Connection, *, secrets_readable: bool) -> State:
    if connection.deleted_at is not None:
        return State.DELETED
    if not connection.active:
        return State.DISABLED
    if not secrets_readable:
        return State.SECRETS_UNAVAILABLE
    if connection.health == NEEDS_CREDENTIALS:
        return State.NEEDS_CREDENTIALS
    if connection.health == FAILING:
        return State.FAILING
    return State.OK


def secret_context(tenant_id: uuid.UUID, connection_id: uuid.UUID, field: str) -> bytes:
    """What a sealed secret is bound to (the associated data): tenant, row and field."""
    return f"connections|{tenant_id}|{connection_id}|{field}".encode()
