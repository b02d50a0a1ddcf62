"""Webhook events as received: stored before the provider gets its 2xx, processed by the
worker, each `webhook-id` once per connection."""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from service.kit.db import metadata

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("connection_id", UUID(as_uuid=True), nullable=False),
    Column("webhook_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("processed_at", DateTime(timezone=True)),
    Column("outcome", Text),
    PrimaryKeyConstraint("tenant_id", "connection_id", "webhook_id"),
    Index(
        "ix_webhook_events_pending",
        "tenant_id",
        "connection_id",
        "received_at",
        postgresql_where=text("processed_at IS NULL"),
    ),
)
