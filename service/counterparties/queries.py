"""What the counterparty list may filter and sort on (allow-lists)."""

from __future__ import annotations

from service.counterparties.models import counterparties
from service.kit.filtering import FieldType, FilterField
from service.kit.listing import Resource, by_name
from service.kit.pagination import SortField

T = FieldType
c = counterparties.c

COUNTERPARTIES = Resource(
    key="counterparties",
    table=counterparties,
    filter_fields=by_name(
        [
            FilterField("id", c.id, T.UUID),
            FilterField("name", c.name, T.TEXT),
            FilterField("siret", c.siret, T.TEXT),
            FilterField("siren", c.siren, T.TEXT),
            FilterField("vat_number", c.vat_number, T.TEXT),
            FilterField("head_office", c.head_office, T.BOOL),
            FilterField("created_at", c.created_at, T.TIMESTAMP),
            FilterField("updated_at", c.updated_at, T.TIMESTAMP),
            FilterField("deleted_at", c.deleted_at, T.TIMESTAMP),
        ]
    ),
    sort_fields=by_name(
        [
            SortField("created_at", c.created_at, T.TIMESTAMP),
            SortField("updated_at", c.updated_at, T.TIMESTAMP),
            SortField("name", c.name, T.TEXT),
            SortField("siret", c.siret, T.TEXT, nullable=True),
        ]
    ),
    app_scoped=False,
)
