"""Ingestion use cases: a provider's documents become supplier invoices, matched to the
tenant's counterparties and recorded as provenance, page by page.

Each page runs in one transaction with the connection row locked: the documents, the
provider's cursor to the next page and the high-water mark commit together, so a crash
mid-poll resumes at the page it was on (nothing lost, nothing applied twice: ingestion is
idempotent on (tenant, provider, document id) anyway). Each document runs in a savepoint:
one that cannot be applied is counted as skipped and logged, and the page goes on.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import hmac
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from service.connections import service as connections
from service.counterparties import service as counterparties
from service.ingestion import repository, yooz
from service.invoices import service as invoices
from service.kit import db, ids, webhooks
from service.kit.auth import Principal
from service.kit.deps import Deps
from service.kit.errors import DomainError
from service.kit.keyring import Secret
from service.provenance import service as provenance

log = logging.getLogger("service.ingestion")
WEBHOOK_TASK = "ingestion.webhooks"
TOLERANCE_S = 300
EVENT_TYPES = ("invoice.created", "invoice.updated", "invoice.rejected")
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,256}")
OUTCOMES = ("created", "updated", "unchanged", "skipped")
ProviderError = yooz.ProviderError
_clients: dict[tuple[str, int], yooz.Client] = {}


def client(deps: Deps) -> yooz.Client:
    """One HTTP client (connection pool) per process and provider settings."""
    key = (deps.settings.yooz_base_url, deps.settings.yooz_timeout_s)
    if key not in _clients:
        _clients[key] = yooz.Client(key[0], timeout_s=key[1])
    return _clients[key]


@dataclasses.dataclass(frozen=True)
class PageOutcome:
    counts: Mapping[str, int]
    more: bool
    next_in: timedelta
    not_polled: str = ""  # why the connection is not polled (deleted, inactive, ...)


def interval(deps: Deps) -> timedelta:
    """The polling interval, jittered by ±10 % so connections spread out."""
    base = deps.settings.poll_interval_s
    return timedelta(seconds=random.uniform(base * 0.9, base * 1.1))  # noqa: S311 (jitter)


async def poll_page(
    conn: db.Conn,
    principal: Principal,
    *,
    connection_id: uuid.UUID,
    deps: Deps,
    client: yooz.Client,
) -> PageOutcome:
    """Fetch and ingest the next page of a connection's poll. Raises yooz.ProviderError
    (after nothing was written) when the provider fails."""
    polled = await connections.lock_for_poll(
        conn, principal, connection_id=connection_id, keys=deps.keys
    )
    if isinstance(polled, str):
        await connections.unscheduled(conn, principal, connection_id=connection_id)
        return PageOutcome({}, more=False, next_in=timedelta(days=1), not_polled=polled)
    page = await client.list_page(polled.api_key, updated_after=polled.mark, cursor=polled.cursor)
    counts: collections.Counter[str] = collections.Counter()
    mark = polled.mark
    for raw in page.documents:
        outcome, seen = await ingest_document(conn, principal, connection_id=connection_id, raw=raw)
        counts[outcome] += 1
        if seen is not None and (mark is None or seen > mark):
            mark = seen
    next_in = interval(deps)
    await connections.page_done(
        conn,
        principal,
        polled=polled,
        next_cursor=page.next_cursor,
        mark=mark,
        counts=dict(counts),
        next_poll_in=next_in,
    )
    return PageOutcome(dict(counts), more=page.next_cursor is not None, next_in=next_in)


async def poll_failed(
    conn: db.Conn,
    principal: Principal,
    *,
    connection_id: uuid.UUID,
    error: yooz.ProviderError,
    deps: Deps,
) -> timedelta | None:
    """Record a failed poll; returns when to try again (None: not until new credentials)."""
    every = timedelta(seconds=deps.settings.poll_interval_s)
    current = await connections.get_live_or_none(conn, principal, connection_id=connection_id)
    failures = current.consecutive_failures if current is not None else 0
    if error.refused:
        retry_in = None
    elif error.retry_after is not None:
        retry_in = timedelta(seconds=error.retry_after)
    else:
        retry_in = yooz.backoff(failures, every)
    await connections.poll_failed(
        conn,
        principal,
        connection_id=connection_id,
        error=str(error),
        credentials_refused=error.refused,
        retry_in=retry_in,
    )
    return retry_in


async def ingest_document(
    conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID, raw: Mapping[str, Any]
) -> tuple[str, datetime | None]:
    """One document (in a savepoint); returns its outcome and its updated_at when it has a
    valid one (the poll's high-water mark)."""
    public = ids.encode_id(ids.PREFIXES["connection"], connection_id)
    try:
        doc = yooz.parse(raw)
    except yooz.Malformed as exc:
        log.warning(
            "document skipped",
            extra={
                "fields": {
                    "connection": public,
                    "document": str(raw.get("id"))[:200],
                    "reason": str(exc),
                }
            },
        )
        return "skipped", None
    seen = await invoices.applied_at(conn, principal, doc.provider, doc.external_id)
    if seen is not None and doc.updated_at <= seen:
        return "unchanged", doc.updated_at  # already applied: no matching, no lock
    await conn.execute("SAVEPOINT ingest_document")
    try:
        match = await counterparties.match(
            conn,
            principal,
            counterparties.Identity(siret=doc.supplier_siret, siren=doc.supplier_siren),
        )
        supplier = invoices.SupplierOutcome(
            counterparty_id=match.counterparty_id,
            status=match.status.value,
            reason=match.reason,
            siren=match.siren or "",
        )
        result = await invoices.ingest(conn, principal, doc=doc, supplier=supplier)
        if result.invoice is not None and result.outcome in ("created", "updated"):
            await provenance.record(
                conn,
                principal,
                invoice_id=result.invoice.id,
                connection_id=connection_id,
                direction=provenance.INPUT,
            )
    except (DomainError, asyncpg.PostgresError, ValueError) as exc:
        await conn.execute("ROLLBACK TO SAVEPOINT ingest_document")
        log.warning(
            "document skipped",
            extra={
                "fields": {
                    "connection": public,
                    "document": doc.external_id,
                    "reason": f"{type(exc).__name__}: {str(exc)[:300]}",
                }
            },
        )
        return "skipped", doc.updated_at
    await conn.execute("RELEASE SAVEPOINT ingest_document")
    return result.outcome, doc.updated_at


# ---- webhooks (Standard Webhooks, PROVIDERS.md) ----------------------------------------------


class Rejected(Exception):
    """A webhook refused: the HTTP status and a reason that tells nothing about secrets."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


# connection id -> tenant id: immutable, so cached (whether the connection takes webhooks
# is read from its row on every request).
_tenants: dict[uuid.UUID, uuid.UUID] = {}


def verify(
    secret: Secret, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> str:
    """The event's webhook-id once its signature and timestamp check out (Standard
    Webhooks: HMAC-SHA256 over `id.timestamp.body`, any of the space-separated `v1,`
    signatures, compared in constant time; the timestamp within 5 minutes)."""
    message_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not _WEBHOOK_ID.fullmatch(message_id) or not stamp.isascii() or not stamp.isdigit():
        raise Rejected(401, "missing or malformed webhook headers")
    if len(stamp) > 12 or abs((now or time.time()) - int(stamp)) > TOLERANCE_S:
        raise Rejected(401, "the timestamp is more than 5 minutes from now")
    key = webhooks.key(secret)
    expected = webhooks.digest(secret, message_id, stamp, body)
    for candidate in signatures.split(" ")[:16]:
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if key and hmac.compare_digest(given, expected):
            return message_id
    raise Rejected(401, "no valid signature")


async def receive_webhook(
    database: db.Database,
    *,
    connection_id: uuid.UUID,
    headers: Mapping[str, str],
    body: bytes,
    deps: Deps,
) -> bool:
    """Verify and store a webhook (before the provider hears 2xx); True if new, False for a
    redelivery of a webhook-id already received. Raises Rejected (404 for a connection that
    takes no webhooks: unknown, another's, inactive, deleted, without a secret)."""
    tenant = _tenants.get(connection_id)
    if tenant is None:
        async with db.single_statement(database) as conn:
            tenant = await connections.tenant_of(conn, connection_id)
        if tenant is None:
            raise Rejected(404, "no such connection")
        if len(_tenants) >= 100_000:
            _tenants.clear()
        _tenants[connection_id] = tenant  # a connection never changes tenant
    principal = _system(tenant)
    async with db.unit_of_work(database, tenant) as conn:
        secret = await connections.webhook_secret(
            conn, principal, connection_id=connection_id, keys=deps.keys
        )
        if secret is None:
            raise Rejected(404, "no such connection")
        message_id = verify(secret, headers, body)
        try:
            event = json.loads(body)
        except ValueError:
            raise Rejected(400, "the body is not JSON") from None
        if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
            raise Rejected(400, f"the type must be one of {', '.join(EVENT_TYPES)}")
        if not isinstance(event.get("data"), dict):
            raise Rejected(400, "data must be the document")
        return await repository.store(
            conn, tenant, connection_id, message_id, str(event["type"]), body, task=WEBHOOK_TASK
        )


async def process_webhooks(
    conn: db.Conn, principal: Principal, *, connection_id: uuid.UUID, deps: Deps, batch: int
) -> tuple[int, bool]:
    """Apply up to `batch` stored events of the connection in order (each document in its
    savepoint); returns (how many, whether more wait). A connection deleted or disabled
    since: its events are closed unapplied (deletion stops webhook processing at once)."""
    events = await repository.pending(conn, principal.tenant_id, connection_id, batch)
    live = await connections.get_live_or_none(conn, principal, connection_id=connection_id)
    for event in events:
        if live is None or not live.active:
            outcome = "not applied: the connection is deleted or inactive"
        else:
            data = json.loads(event["body"])["data"]
            if event["event_type"] == "invoice.rejected":
                data = {**data, "status": "rejected"}
            outcome, _seen = await ingest_document(
                conn, principal, connection_id=connection_id, raw=data
            )
        await repository.done(
            conn, principal.tenant_id, connection_id, event["webhook_id"], outcome
        )
    return len(events), len(events) == batch


def _system(tenant: uuid.UUID) -> Principal:
    return Principal(
        subject="system:webhooks",
        tenant_id=tenant,
        app_id=None,
        workspaces=frozenset(),
        permissions=frozenset({"system"}),
    )
