"""What the connection list may filter and sort on (allow-lists)."""

from __future__ import annotations

from service.connections.models import connections
from service.kit.filtering import FieldType, FilterField, id_field
from service.kit.listing import Resource, by_name
from service.kit.pagination import SortField

T = FieldType
c = connections.c

CONNECTIONS = Resource(
    key="connections",
    table=connections,
    filter_fields=by_name(
        [
            id_field("id", c.id, "connection"),
            FilterField("provider", c.provider, T.TEXT),
            FilterField("active", c.active, T.BOOL),
            FilterField("has_credentials", c.api_key_sealed.isnot(None), T.BOOL),
            FilterField("has_webhook_secret", c.webhook_secret_sealed.isnot(None), T.BOOL),
            FilterField("endpoint_url", c.endpoint_url, T.TEXT),
            FilterField("consecutive_failures", c.consecutive_failures, T.INTEGER),
            FilterField("last_polled_at", c.last_polled_at, T.TIMESTAMP),
            FilterField("last_error_at", c.last_error_at, T.TIMESTAMP),
            FilterField("next_poll_at", c.next_poll_at, T.TIMESTAMP),
            FilterField("created_at", c.created_at, T.TIMESTAMP),
            FilterField("updated_at", c.updated_at, T.TIMESTAMP),
            FilterField("deleted_at", c.deleted_at, T.TIMESTAMP),
        ]
    ),
    sort_fields=by_name(
        [
            SortField("created_at", c.created_at, T.TIMESTAMP),
            SortField("updated_at", c.updated_at, T.TIMESTAMP),
            SortField("provider", c.provider, T.TEXT),
            SortField("last_polled_at", c.last_polled_at, T.TIMESTAMP, nullable=True),
        ]
    ),
    app_scoped=False,
)
