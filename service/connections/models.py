"""The connections table: a tenant's link to a provider, its sealed secrets and health."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

from service.kit.db import audited, metadata

HEALTHS = ("ok", "failing", "needs_credentials")

connections = Table(
    "connections",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("provider", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("endpoint_url", Text, nullable=False, server_default=""),
    # Sealed secrets (AES-256-GCM, service.kit.keyring): the key id and nonce||ciphertext.
    Column("api_key_kid", Text),
    Column("api_key_sealed", LargeBinary),
    Column("webhook_secret_kid", Text),
    Column("webhook_secret_sealed", LargeBinary),
    # Health, written by polling and delivery (the ingestion issue).
    Column("health", Text, nullable=False, server_default="ok"),
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("next_poll_at", DateTime(timezone=True)),
    Column("last_polled_at", DateTime(timezone=True)),
    # Polling progress: the provider's cursor while a poll is under way (each page commits
    # with the cursor to the next), the high-water mark of the documents' updated_at, and
    # the counts of the last poll.
    Column("poll_cursor", Text),
    Column("poll_mark", DateTime(timezone=True)),
    Column("last_poll", JSONB),
    *audited(),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint("provider ~ '^[a-z][a-z0-9_]{0,31}$'", name="provider"),
    CheckConstraint("health IN ('ok', 'failing', 'needs_credentials')", name="health"),
    CheckConstraint("consecutive_failures >= 0", name="consecutive_failures"),
    CheckConstraint("(api_key_kid IS NULL) = (api_key_sealed IS NULL)", name="api_key_sealed"),
    CheckConstraint(
        "(webhook_secret_kid IS NULL) = (webhook_secret_sealed IS NULL)",
        name="webhook_secret_sealed",
    ),
    Index("ix_connections_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
    # One active connection per provider and tenant, race-safe.
    Index(
        "uq_connections_tenant_id_provider_active",
        "tenant_id",
        "provider",
        unique=True,
        postgresql_where=text("active AND deleted_at IS NULL"),
    ),
)


# Which tenant a connection belongs to, for the one caller that has no token: the provider
# posting a webhook to /v1/invoice-connections/{id}/webhooks. Ids only (a system table,
# outside tenant RLS like the work queue); the row itself is read under RLS afterwards.
connection_routes = Table(
    "connection_routes",
    metadata,
    Column("connection_id", UUID(as_uuid=True), primary_key=True),
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    info={"system": True},
)
