"""What the provenance list may filter and sort on (allow-lists)."""

from __future__ import annotations

from sqlalchemy import Text, cast

from service.kit.filtering import FieldType, FilterField, enum_values, id_field
from service.kit.listing import Resource, by_name
from service.kit.pagination import SortField
from service.provenance.models import invoice_provenances
from service.provenance.rules import DIRECTIONS

T = FieldType
p = invoice_provenances.c
DIRECTION_VALUES = enum_values(DIRECTIONS, "PROVENANCE_DIRECTION")

PROVENANCES = Resource(
    key="invoice_provenances",
    table=invoice_provenances,
    filter_fields=by_name(
        [
            id_field("id", p.id, "provenance"),
            id_field("invoice_id", p.invoice_id, "invoice"),
            id_field("connection_id", p.connection_id, "connection"),
            FilterField("direction", p.direction, T.ENUM, DIRECTION_VALUES),
            FilterField("created_at", p.created_at, T.TIMESTAMP),
            FilterField("updated_at", p.updated_at, T.TIMESTAMP),
            FilterField("deleted_at", p.deleted_at, T.TIMESTAMP),
        ]
    ),
    sort_fields=by_name(
        [
            SortField("created_at", p.created_at, T.TIMESTAMP),
            SortField("updated_at", p.updated_at, T.TIMESTAMP, nullable=True),
            SortField("direction", cast(p.direction, Text), T.TEXT),
            SortField("invoice_id", p.invoice_id, T.UUID),
            SortField("connection_id", p.connection_id, T.UUID),
        ]
    ),
    app_scoped=False,
)
