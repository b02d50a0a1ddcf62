"""Connection use cases. Each runs inside the caller's transaction and never commits.

Secrets are sealed here (AES-256-GCM under the key ring, bound to tenant, row and field)
and opened only by `open_secrets`, for the adapters that call the provider. Ingestion uses
connections only through this module.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import func

from service.connections import providers, repository
from service.connections.queries import CONNECTIONS
from service.connections.rules import (
    API_KEY,
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
from service.kit import db, errors, etags, ids, listing
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
    return view(await repository.insert(conn, values), deps.keys)


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


async def lock(conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID) -> Connection:
    """The live connection, row-locked until the transaction ends (NOT_FOUND if deleted)."""
    connection = await repository.get(conn, principal, connection_id, for_update=True)
    if connection is None or connection.deleted_at is not None:
        raise _not_found(connection_id)
    return connection


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
