"""What a list request may filter and sort on, mapped to columns (an allow-list)."""

from __future__ import annotations

from sqlalchemy import and_, false, func

from service.invoices.models import invoices
from service.kit.filtering import FieldType, FilterField, enum_values, id_field
from service.kit.listing import Resource
from service.kit.pagination import SortField
from service.provenance import service as provenance

c = invoices.c
T = FieldType


_enum = enum_values


OVERDUE = func.coalesce(
    and_(c.status == "issued", c.payment_status != "paid", c.due_date < func.current_date()),
    false(),
)

_FIELDS = [
    id_field("id", c.id, "invoice"),
    FilterField("number", c.number, T.TEXT),
    FilterField("type", c.type, T.ENUM, _enum(("customer", "supplier"), "INVOICE_TYPE")),
    FilterField(
        "direction", c.direction, T.ENUM, _enum(("receivable", "payable"), "INVOICE_DIRECTION")
    ),
    FilterField("status", c.status, T.ENUM, _enum(("draft", "issued", "void"), "INVOICE_STATUS")),
    FilterField(
        "payment_status",
        c.payment_status,
        T.ENUM,
        _enum(("unpaid", "partially_paid", "paid"), "PAYMENT_STATUS"),
    ),
    FilterField(
        "source_type",
        c.source_type,
        T.ENUM,
        _enum(("frontend", "backend", "server", "system", "api"), "SOURCE_TYPE"),
    ),
    FilterField("counterparty_id", c.counterparty_id, T.UUID),
    FilterField("account_id", c.counterparty_id, T.UUID),
    FilterField("vendor_id", c.counterparty_id, T.UUID),
    FilterField("project_id", c.project_id, T.UUID),
    FilterField("contract_id", c.contract_id, T.UUID),
    FilterField("po_id", c.po_id, T.UUID),
    FilterField("order_id", c.order_id, T.INTEGER),
    FilterField("project_sequence_id", c.project_sequence_id, T.INTEGER),
    FilterField("currency", c.currency, T.TEXT),
    FilterField("subtotal", c.subtotal, T.NUMBER),
    FilterField("tax_amount", c.tax_amount, T.NUMBER),
    FilterField("discount_amount", c.discount_amount, T.NUMBER),
    FilterField("total", c.total, T.NUMBER),
    FilterField("amount", c.total, T.NUMBER),
    FilterField("amount_paid", c.amount_paid, T.NUMBER),
    FilterField("amount_due", c.total - c.amount_paid, T.NUMBER),
    FilterField("issue_date", c.issue_date, T.DATE),
    FilterField("due_date", c.due_date, T.DATE),
    FilterField("paid_at", c.paid_at, T.TIMESTAMP),
    FilterField("issued_at", c.issued_at, T.TIMESTAMP),
    FilterField("voided_at", c.voided_at, T.TIMESTAMP),
    FilterField("created_at", c.created_at, T.TIMESTAMP),
    FilterField("updated_at", c.updated_at, T.TIMESTAMP),
    FilterField("deleted_at", c.deleted_at, T.TIMESTAMP),
    FilterField("notes", c.notes, T.TEXT),
    FilterField("document_ref", c.document_ref, T.TEXT),
    FilterField("source", c.source, T.TEXT),
    FilterField("created_by", c.created_by, T.TEXT),
    FilterField("updated_by", c.updated_by, T.TEXT),
    FilterField("tags", c.tags, T.TAGS),
    FilterField("overdue", OVERDUE, T.BOOL),
    # Ingested invoices (seed 004): the document, the supplier match, the review flag.
    FilterField("external_provider", c.external_provider, T.TEXT),
    FilterField("external_id", c.external_id, T.TEXT),
    FilterField(
        "match_status",
        c.match_status,
        T.ENUM,
        _enum(("matched", "unmatched", "ambiguous"), "MATCH_STATUS"),
    ),
    FilterField("supplier_siren", c.supplier_siren, T.TEXT),
    FilterField("supplier_siret", c.supplier_siret, T.TEXT),
    FilterField("review_required", c.review_reason.is_not(None), T.BOOL),
    # Seed 002: the children of a parent, the parents, the identifiers.
    id_field("parent_id", c.parent_id, "invoice"),
    FilterField("is_aggregation_parent", c.is_parent, T.BOOL),
    FilterField("job_id", c.job_id, T.TEXT),
    FilterField("flex_transaction_id", c.flex_transaction_id, T.TEXT),
    # Provenance (seed 000): `input_connection_id = "con_…"`, the invoices that came in
    # through a connection (EXISTS over the junction's connection index).
    *provenance.invoice_filters(c.tenant_id, c.id),
]
FILTER_FIELDS = {f.name: f for f in _FIELDS}

_SORTS = [
    SortField("created_at", c.created_at, T.TIMESTAMP),
    SortField("updated_at", c.updated_at, T.TIMESTAMP),
    SortField("issue_date", c.issue_date, T.DATE, nullable=True),
    SortField("due_date", c.due_date, T.DATE, nullable=True),
    SortField("number", c.number, T.TEXT, nullable=True),
    SortField("total", c.total, T.NUMBER),
    SortField("amount_due", c.total - c.amount_paid, T.NUMBER),
    SortField("currency", c.currency, T.TEXT),
    SortField("status", c.status, T.TEXT),
]
SORT_FIELDS = {s.name: s for s in _SORTS}
DEFAULT_SORT = "created_at"
INVOICES = Resource(
    key="invoices",
    table=invoices,
    filter_fields=FILTER_FIELDS,
    sort_fields=SORT_FIELDS,
    default_sort=DEFAULT_SORT,
)
