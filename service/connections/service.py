"""Connection use cases. Each runs inside the caller's transaction and never commits.

Secrets are sealed here (AES-256-GCM under the key ring, bound to tenant, row and field)
and opened only by `open_secrets`, for the adapters that call the provider. Ingestion uses
connections only through this module.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func

from service.connections import providers, repository
from service.connections.queries import CONNECTIONS
from service.connections.rules import (
    API_KEY,
    FAILING,
    NEEDS_CREDENTIALS,
    OK,
    WEBHOOK_SECRET,
    Changes,
    Connection,
    ConnectionDraft,
    State,
    View,
    secret_context,
    state_of,
)
from service.kit import db, errors, etags, ids, listing, work
from service.kit.auth import Principal
from service.kit.deps import Deps
from service.kit.keyring import KeyRing, Sealed, Secret, SecretUnavailable

log = logging.getLogger("service.connections")
LISTING = CONNECTIONS
__all__ = ["LISTING", "Changes", "Connection", "ConnectionDraft", "State", "View"]

# (connection, kid) pairs already reported as unreadable by this process: one log line
# each, not one per read.
_reported: set[tuple[uuid.UUID, str, str]] = set()


async def create_connection(
    conn: db.Conn, principal: Principal, *, draft: ConnectionDraft, deps: Deps
) -> View:
    provider = providers.get(draft.provider)
    provider.check(
        providers.Given(
            api_key=draft.api_key,
            webhook_secret=draft.webhook_secret,
            endpoint_url=draft.endpoint_url,
            creating=True,
            allow_loopback_http=deps.settings.webhook_allow_loopback_http,
        )
    )
    connection_id = ids.new_uuid7()
    values: dict[str, Any] = {
        "tenant_id": principal.tenant_id,
        "id": connection_id,
        "provider": provider.key,
        "active": draft.active,
        "endpoint_url": draft.endpoint_url,
        "created_by": principal.subject,
        "updated_by": principal.subject,
    }
    values.update(_sealed(deps.keys, principal.tenant_id, connection_id, API_KEY, draft.api_key))
    values.update(
        _sealed(deps.keys, principal.tenant_id, connection_id, WEBHOOK_SECRET, draft.webhook_secret)
    )
    created = await repository.insert(conn, values)
    await repository.insert_route(conn, principal.tenant_id, connection_id)
    await _schedule(conn, created)
    return view(created, deps.keys)


async def get_connection(
    conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID, deps: Deps
) -> View:
    connection = await repository.get(conn, principal, connection_id)
    if connection is None:
        raise _not_found(connection_id)
    return view(connection, deps.keys)


async def list_connections(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> listing.Page[View]:
    page = await listing.list_page(conn, principal, CONNECTIONS, query, deps.cursors)
    return page.map(lambda row: view(repository.from_row(row), deps.keys))


async def update_connection(
    conn: db.Conn,
    principal: Principal,
    *,
    connection_id: uuid.UUID,
    changes: Changes,
    etag: str,
    deps: Deps,
) -> View:
    if changes.empty:
        raise errors.invalid(
            "update_mask",
            "nothing to update: set at least one of api_key, webhook_secret, active, endpoint_url",
            reason="NO_FIELDS",
        )
    connection = await lock(conn, principal, connection_id=connection_id)
    etags.check(connection.etag, etag, "connection")
    providers.get(connection.provider).check(
        providers.Given(
            api_key=changes.api_key,
            webhook_secret=changes.webhook_secret,
            endpoint_url=changes.endpoint_url,
            creating=False,
            allow_loopback_http=deps.settings.webhook_allow_loopback_http,
        )
    )
    tenant = principal.tenant_id
    values: dict[str, Any] = {}
    if changes.api_key is not None:
        values.update(_sealed(deps.keys, tenant, connection_id, API_KEY, changes.api_key))
        if connection.health == NEEDS_CREDENTIALS:
            # New credentials end the wait: the next poll tries them.
            values.update(health=OK, consecutive_failures=0)
    if changes.webhook_secret is not None:
        secret = changes.webhook_secret if changes.webhook_secret.reveal() else None
        values.update(_sealed(deps.keys, tenant, connection_id, WEBHOOK_SECRET, secret))
    if changes.active is not None:
        values["active"] = changes.active
        if not changes.active:
            values["next_poll_at"] = None
    if changes.endpoint_url is not None:
        values["endpoint_url"] = changes.endpoint_url
    updated = await repository.update(conn, principal, connection_id, values)
    if changes.api_key is not None or changes.active:
        await _schedule(conn, updated)  # new credentials or re-enabled: poll now
    return view(updated, deps.keys)


async def delete_connection(
    conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID, etag: str
) -> None:
    """Soft delete: inactive and unscheduled in the same write, so no poll starts and no
    webhook is accepted once it commits (both read the row under its lock)."""
    connection = await lock(conn, principal, connection_id=connection_id)
    etags.check(connection.etag, etag, "connection")
    values = {
        "deleted_at": func.now(),
        "deleted_by": principal.subject,
        "active": False,
        "next_poll_at": None,
    }
    await repository.update(conn, principal, connection_id, values)


async def get_live(conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID) -> Connection:
    """The connection unless unknown, deleted or another tenant's (NOT_FOUND), without
    opening its secrets (provenance checks its references with it)."""
    connection = await repository.get(conn, principal, connection_id)
    if connection is None or connection.deleted_at is not None:
        raise _not_found(connection_id)
    return connection


async def get_live_or_none(
    conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID
) -> Connection | None:
    connection = await repository.get(conn, principal, connection_id)
    return None if connection is None or connection.deleted_at is not None else connection


async def lock(conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID) -> Connection:
    """The live connection, row-locked until the transaction ends (NOT_FOUND if deleted)."""
    connection = await repository.get(conn, principal, connection_id, for_update=True)
    if connection is None or connection.deleted_at is not None:
        raise _not_found(connection_id)
    return connection


# ---- polling (the ingestion module runs the polls; the state lives here) ------------------

POLL_TASK = "connections.poll"


def polls(connection: Connection) -> bool:
    return providers.get(connection.provider).direction == providers.INBOUND


async def _schedule(conn: db.Conn, connection: Connection) -> None:
    if connection.active and connection.deleted_at is None and polls(connection):
        await work.enqueue(conn, connection.tenant_id, POLL_TASK, str(connection.id), sooner=True)


@dataclasses.dataclass(frozen=True)
class Pollable:
    """A connection locked for one page of a poll, with its key opened."""

    connection: Connection
    api_key: Secret
    cursor: str | None
    mark: datetime | None
    fresh: bool  # the first page of a new poll


async def lock_for_poll(
    conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID, keys: KeyRing
) -> Pollable | str:
    """The connection row-locked for a page (so no other poller takes the same page), or
    why it is not polled: deleted, inactive, outbound, waiting for credentials, or its key
    cannot be opened. The lock is held while the page is fetched and ingested."""
    connection = await repository.get(conn, principal, connection_id, for_update=True)
    if connection is None or connection.deleted_at is not None:
        return "deleted"
    if not connection.active:
        return "inactive"
    if not polls(connection):
        return "outbound"
    if connection.health == NEEDS_CREDENTIALS:
        return "waiting for new credentials"
    try:
        api_key, _secret = open_secrets(connection, keys)
    except SecretUnavailable:
        return "its secrets cannot be opened"
    if api_key is None:
        return "no API key"
    return Pollable(
        connection,
        api_key,
        connection.poll_cursor,
        connection.poll_mark,
        fresh=connection.poll_cursor is None,
    )


async def page_done(
    conn: db.Conn,
    principal: Principal,
    *,
    polled: Pollable,
    next_cursor: str | None,
    mark: datetime | None,
    counts: dict[str, int],
    next_poll_in: timedelta,
) -> Connection:
    """A page ingested: its cursor and high-water mark commit with it; the last page ends
    the poll (last_polled_at, healthy again)."""
    c = polled.connection
    summary = last_poll(c)
    if polled.fresh:
        summary = {
            "started_at": _now_iso(),
            "pages": 0,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "skipped": 0,
        }
    summary["pages"] = int(summary.get("pages", 0)) + 1
    for name, value in counts.items():
        summary[name] = int(summary.get(name, 0)) + value
    values: dict[str, Any] = {"poll_cursor": next_cursor, "poll_mark": mark}
    if next_cursor is None:
        summary["finished_at"] = _now_iso()
        values.update(
            last_polled_at=func.now(),
            health=OK,
            consecutive_failures=0,
            next_poll_at=func.now() + next_poll_in,
        )
    values["last_poll"] = summary
    return await repository.update_quietly(conn, principal, c.id, values)


async def poll_failed(
    conn: db.Conn,
    principal: Principal,
    *,
    connection_id: uuid.UUID,
    error: str,
    credentials_refused: bool,
    retry_in: timedelta | None,
) -> Connection | None:
    """Record a failed poll (the error already sanitised: no secret, no provider body):
    refused credentials wait for a new key, anything else is retried in `retry_in`."""
    connection = await repository.get(conn, principal, connection_id, for_update=True)
    if connection is None or connection.deleted_at is not None:
        return None
    values: dict[str, Any] = {
        "health": NEEDS_CREDENTIALS if credentials_refused else FAILING,
        "last_error": error[:500],
        "last_error_at": func.now(),
        "consecutive_failures": connection.consecutive_failures + 1,
        "next_poll_at": None if retry_in is None else func.now() + retry_in,
    }
    return await repository.update_quietly(conn, principal, connection_id, values)


async def unscheduled(conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID) -> None:
    """Not polled any more (deleted, disabled, outbound): no next poll time."""
    connection = await repository.get(conn, principal, connection_id)
    if connection is not None and connection.next_poll_at is not None:
        await repository.update_quietly(conn, principal, connection_id, {"next_poll_at": None})


async def tenant_of(conn: db.Conn, connection_id: uuid.UUID) -> uuid.UUID | None:
    """The tenant of a connection, for a caller without a token (a webhook): ids only."""
    return await repository.route_tenant(conn, connection_id)


async def webhook_secret(
    conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID, keys: KeyRing
) -> Secret | None:
    """The secret that verifies the connection's webhooks, or None when it accepts none:
    unknown, deleted, inactive, outbound, without a secret, or one that cannot be opened."""
    connection = await repository.get(conn, principal, connection_id)
    if connection is None or connection.deleted_at is not None or not connection.active:
        return None
    if not polls(connection):
        return None
    try:
        _api_key, secret = open_secrets(connection, keys)
    except SecretUnavailable:
        return None
    return secret


@dataclasses.dataclass(frozen=True)
class Target:
    """An outbound connection to deliver to, its secrets opened (or why they cannot be)."""

    connection_id: uuid.UUID
    endpoint_url: str
    api_key: Secret | None
    webhook_secret: Secret | None
    problem: str = ""


def _outbound() -> tuple[str, ...]:
    return tuple(k for k, p in providers.PROVIDERS.items() if p.direction == providers.OUTBOUND)


async def has_outbound(conn: db.Conn, principal: Principal) -> bool:
    return bool(await repository.live_of(conn, principal, _outbound()))


async def delivery_targets(conn: db.Conn, principal: Principal, *, keys: KeyRing) -> list[Target]:
    targets = []
    for connection in await repository.live_of(conn, principal, _outbound()):
        try:
            api_key, secret = open_secrets(connection, keys)
        except SecretUnavailable:
            targets.append(
                Target(
                    connection.id,
                    connection.endpoint_url,
                    None,
                    None,
                    "the connection's secrets cannot be opened with the key ring",
                )
            )
            continue
        targets.append(Target(connection.id, connection.endpoint_url, api_key, secret))
    return targets


def last_poll(connection: Connection) -> dict[str, Any]:
    raw = connection.last_poll
    if isinstance(raw, str):
        raw = json.loads(raw)
    return dict(raw or {})


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def open_secrets(connection: Connection, keys: KeyRing) -> tuple[Secret | None, Secret | None]:
    """The connection's (api_key, webhook_secret) in plaintext, for a provider call.
    Raises SecretUnavailable (logged once, without the secret) when one cannot be opened."""
    return (
        _open(connection, keys, API_KEY, connection.api_key_kid, connection.api_key_sealed),
        _open(
            connection,
            keys,
            WEBHOOK_SECRET,
            connection.webhook_secret_kid,
            connection.webhook_secret_sealed,
        ),
    )


def view(connection: Connection, keys: KeyRing) -> View:
    try:
        open_secrets(connection, keys)
        readable = True
    except SecretUnavailable:
        readable = False
    return View(connection, state_of(connection, secrets_readable=readable))


def _open(
    connection: Connection, keys: KeyRing, field: str, kid: str | None, blob: bytes | None
) -> Secret | None:
    if kid is None or blob is None:
        return None
    context = secret_context(connection.tenant_id, connection.id, field)
    try:
        return keys.open(Sealed(kid, blob), context)
    except SecretUnavailable as exc:
        marker = (connection.id, field, kid)
        if marker not in _reported:
            _reported.add(marker)
            log.error(
                "connection %s: the stored %s cannot be opened (%s); the connection is "
                "SECRETS_UNAVAILABLE until the key ring holds key %r again or the secret is "
                "set anew",
                ids.encode_id(ids.PREFIXES["connection"], connection.id),
                field,
                exc.reason,
                kid,
                extra={"tenant_id": str(connection.tenant_id)},
            )
        raise


def _sealed(
    keys: KeyRing, tenant_id: uuid.UUID, connection_id: uuid.UUID, field: str, value: Secret | None
) -> dict[str, Any]:
    if value is None:
        return {f"{field}_kid": None, f"{field}_sealed": None}
    sealed = keys.seal(value, secret_context(tenant_id, connection_id, field))
    return {f"{field}_kid": sealed.kid, f"{field}_sealed": sealed.blob}


def _not_found(connection_id: uuid.UUID) -> errors.DomainError:
    return errors.not_found("connection", ids.encode_id(ids.PREFIXES["connection"], connection_id))
