"""Translate between protobuf messages and the invoice domain (the edge only).

Decoding validates every field's format and names the field on failure; the
business rules live in `rules.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date
from decimal import Decimal
from typing import Any

from invoicing.v1 import common_pb2, invoices_pb2

from service.edge import pbconv
from service.invoices import rules
from service.kit import errors, ids
from service.kit.money import (
    format_decimal,
    format_money,
    parse_currency,
    parse_decimal,
)

pb = invoices_pb2
_ts = pbconv.ts
_pb_date = pbconv.pb_date
_date = pbconv.date_from_pb
text = pbconv.text
INVOICE_PREFIX = ids.PREFIXES["invoice"]
MAX_LINES = rules.MAX_LINES
MAX_TAGS = 50
QUANTITY_PLACES = 6
PRICE_PLACES = 6
RATE_PLACES = 6
CHECKED_TOTALS = ("subtotal", "tax_amount", "discount_amount", "total", "amount")
OUTPUT_ONLY = frozenset(
    {
        "id",
        "tenant_id",
        "app_id",
        "status",
        "paid_at",
        "paid_date",
        "amount_paid",
        "amount_due",
        "payment_status",
        "tax_breakdown",
        "project_sequence_id",
        "schema_version",
        "is_deleted",
        "created_at",
        "updated_at",
        "created_by",
        "updated_by",
        "created_by_id",
        "deleted_at",
        "deleted_by",
        "etag",
        "issued_at",
        "voided_at",
        "void_reason",
        "overdue",
        "external",
        "supplier_match",
        "review_reason",
        "parent_id",
        "is_aggregation_parent",
        "related",
    }
)
MAX_ATTACHMENTS = 20
_CONTENT_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]{1,63}/[a-z0-9!#$&^_.+-]{1,63}", re.IGNORECASE)
_URL_SCHEMES = ("https://", "s3://", "gs://")
COUNTERPARTY_PATHS = ("counterparty_id", "account_id", "vendor_id")
WRITABLE = rules.DRAFT_FIELDS | set(COUNTERPARTY_PATHS) | set(CHECKED_TOTALS)

TYPES = {pb.INVOICE_TYPE_CUSTOMER: rules.CUSTOMER, pb.INVOICE_TYPE_SUPPLIER: rules.SUPPLIER}
DIRECTIONS = {
    pb.INVOICE_DIRECTION_RECEIVABLE: rules.RECEIVABLE,
    pb.INVOICE_DIRECTION_PAYABLE: rules.PAYABLE,
}
STATUSES = {
    rules.DRAFT: pb.INVOICE_STATUS_DRAFT,
    rules.ISSUED: pb.INVOICE_STATUS_ISSUED,
    rules.VOID: pb.INVOICE_STATUS_VOID,
}
PAYMENT = {
    rules.UNPAID: pb.PAYMENT_STATUS_UNPAID,
    rules.PARTIALLY_PAID: pb.PAYMENT_STATUS_PARTIALLY_PAID,
    rules.PAID: pb.PAYMENT_STATUS_PAID,
}
SOURCE_TYPES = {
    common_pb2.SOURCE_TYPE_FRONTEND: "frontend",
    common_pb2.SOURCE_TYPE_BACKEND: "backend",
    common_pb2.SOURCE_TYPE_SERVER: "server",
    common_pb2.SOURCE_TYPE_SYSTEM: "system",
    common_pb2.SOURCE_TYPE_API: "api",
}
SOURCE_TYPE_PB = {v: k for k, v in SOURCE_TYPES.items()}


# ---- decoding ---------------------------------------------------------------------


def invoice_id(value: str, field_path: str = "id") -> Any:
    if value == "":
        raise errors.invalid(field_path, "is required", reason="REQUIRED")
    return ids.decode_id(value, INVOICE_PREFIX, field_path)


def draft_for_create(invoice: pb.Invoice) -> tuple[rules.Draft, dict[str, Decimal]]:
    """The draft of a CreateInvoice request and any totals the client claimed."""
    if invoice.type == pb.INVOICE_TYPE_UNSPECIFIED:
        raise errors.invalid(
            "invoice.type", "is required (CUSTOMER or SUPPLIER)", reason="REQUIRED"
        )
    if invoice.currency == "":
        raise errors.invalid("invoice.currency", "is required", reason="REQUIRED")
    paths = set(rules.DRAFT_FIELDS) - {"counterparty_id", "line_items"}
    values = {path: DECODERS[path](invoice) for path in paths}
    values["line_items"] = rules.resolve_lines(_lines(invoice), values["currency"])
    values["counterparty_id"] = rules.resolve_party(_parties(invoice), values["type"])
    draft = rules.Draft(**values)
    return draft, rules.resolve_claimed(_claimed(invoice, CHECKED_TOTALS), draft.currency)


def patch_for_update(invoice: pb.Invoice, mask_paths: Iterable[str], has_mask: bool) -> rules.Patch:
    """An UpdateInvoice request as a patch; the use case resolves it on the locked row."""
    paths = _update_paths(invoice, list(mask_paths), has_mask)
    plain = paths & rules.DRAFT_FIELDS - {"counterparty_id", "line_items"}
    return rules.Patch(
        paths=frozenset(paths),
        values={path: DECODERS[path](invoice) for path in plain},
        lines=_lines(invoice) if "line_items" in paths else None,
        parties=_parties(invoice) if paths & set(COUNTERPARTY_PATHS) else None,
        claimed=_claimed(invoice, [p for p in paths if p in CHECKED_TOTALS]),
    )


def payment(request: pb.PayInvoiceRequest) -> rules.Payment:
    paid_at = None
    if request.HasField("paid_at"):
        try:
            paid_at = request.paid_at.ToDatetime(tzinfo=UTC)
        except (ValueError, OverflowError):
            raise errors.invalid("paid_at", "is out of range", reason="OUT_OF_RANGE") from None
        if not pbconv.MIN_YEAR <= paid_at.year <= pbconv.MAX_YEAR:
            raise errors.invalid(
                "paid_at",
                f"must be in the years {pbconv.MIN_YEAR} to {pbconv.MAX_YEAR}",
                reason="OUT_OF_RANGE",
            )
    return rules.Payment(
        invoice_id=invoice_id(request.id),
        amount=request.amount,
        currency=pbconv.optional_currency(request.currency, "currency"),
        paid_at=paid_at,
        reference=text(request.reference, "reference", max_length=255),
        etag=request.etag,
    )


def _update_paths(invoice: pb.Invoice, paths: list[str], has_mask: bool) -> set[str]:
    if not has_mask:
        present = {f.name for f, _ in invoice.ListFields()}
        return present & WRITABLE
    if paths == ["*"]:
        return set(rules.DRAFT_FIELDS)
    for path in paths:
        if path in OUTPUT_ONLY:
            raise errors.invalid(
                "update_mask", f"{path} is output only", reason="READ_ONLY_FIELD", path=path
            )
        if path not in WRITABLE:
            raise errors.invalid(
                "update_mask", f"unknown field {path!r}", reason="UNKNOWN_FIELD", path=path
            )
    return set(paths)


def _parties(invoice: pb.Invoice) -> rules.Parties:
    return rules.Parties(
        **{
            name: ids.parse_uuid(getattr(invoice, name), f"invoice.{name}")
            for name in COUNTERPARTY_PATHS
        }
    )


def _claimed(invoice: pb.Invoice, names: Iterable[str]) -> dict[str, str]:
    return {name: getattr(invoice, name) for name in names if getattr(invoice, name)}


def _type(invoice: pb.Invoice) -> str:
    if invoice.type not in TYPES:
        raise errors.invalid("invoice.type", "must be CUSTOMER or SUPPLIER", reason="REQUIRED")
    return TYPES[invoice.type]


def _direction(invoice: pb.Invoice) -> str | None:
    if invoice.direction == pb.INVOICE_DIRECTION_UNSPECIFIED:
        return None
    if invoice.direction not in DIRECTIONS:
        raise errors.invalid("invoice.direction", "unknown value", reason="INVALID_ENUM")
    return DIRECTIONS[invoice.direction]


def _line(item: pb.LineItem, index: int) -> rules.PendingLine:
    path = f"invoice.line_items[{index}]"
    return rules.PendingLine(
        description=text(item.description, f"{path}.description", max_length=1000),
        quantity=parse_decimal(
            item.quantity,
            f"{path}.quantity",
            max_places=QUANTITY_PLACES,
            minimum=Decimal(0),
            exclusive_minimum=True,
        ),
        unit_price=parse_decimal(
            item.unit_price, f"{path}.unit_price", max_places=PRICE_PLACES, minimum=Decimal(0)
        ),
        tax_rate=parse_decimal(
            item.tax_rate,
            f"{path}.tax_rate",
            max_places=RATE_PLACES,
            minimum=Decimal(0),
            maximum=Decimal(1),
            empty=Decimal(0),
        ),
        discount_amount=item.discount_amount,
    )


def _lines(invoice: pb.Invoice) -> tuple[rules.PendingLine, ...]:
    if len(invoice.line_items) > MAX_LINES:
        raise errors.invalid(
            "invoice.line_items", f"at most {MAX_LINES} line items", reason="TOO_MANY_ITEMS"
        )
    return tuple(_line(item, i) for i, item in enumerate(invoice.line_items))


def _tags(invoice: pb.Invoice) -> tuple[str, ...]:
    if len(invoice.tags) > MAX_TAGS:
        raise errors.invalid("invoice.tags", f"at most {MAX_TAGS} tags", reason="TOO_MANY_ITEMS")
    seen: dict[str, None] = {}
    for i, tag in enumerate(invoice.tags):
        text(tag, f"invoice.tags[{i}]", max_length=64)
        if not tag.strip():
            raise errors.invalid(f"invoice.tags[{i}]", "must not be blank", reason="INVALID_TAG")
        seen[tag] = None
    return tuple(seen)


def _order_id(invoice: pb.Invoice) -> int | None:
    if not invoice.HasField("order_id"):
        return None
    if invoice.order_id <= 0:
        raise errors.invalid("invoice.order_id", "must be positive", reason="OUT_OF_RANGE")
    return invoice.order_id


def _number(invoice: pb.Invoice) -> str | None:
    value = text(invoice.number, "invoice.number", max_length=64).strip()
    return value or None


def _source_type(invoice: pb.Invoice) -> str:
    if invoice.source_type == common_pb2.SOURCE_TYPE_UNSPECIFIED:
        return "api"
    if invoice.source_type not in SOURCE_TYPES:
        raise errors.invalid("invoice.source_type", "unknown value", reason="INVALID_ENUM")
    return SOURCE_TYPES[invoice.source_type]


def _short_id(value: str, field_path: str) -> str | None:
    cleaned = text(value.strip(), field_path, max_length=100)
    return cleaned or None


def _attachments(invoice: pb.Invoice) -> tuple[rules.Attachment, ...]:
    if len(invoice.attachments) > MAX_ATTACHMENTS:
        raise errors.invalid(
            "invoice.attachments",
            f"at most {MAX_ATTACHMENTS} attachments",
            reason="TOO_MANY",
            maxItems=str(MAX_ATTACHMENTS),
        )
    found = []
    for index, item in enumerate(invoice.attachments):
        path = f"invoice.attachments[{index}]"
        name = text(item.name.strip(), f"{path}.name", max_length=255)
        if not name:
            raise errors.invalid(f"{path}.name", "is required", reason="REQUIRED")
        content_type = item.content_type.strip()
        if content_type and not _CONTENT_TYPE.fullmatch(content_type):
            raise errors.invalid(
                f"{path}.content_type",
                "must be a MIME type like application/pdf",
                reason="INVALID_CONTENT_TYPE",
            )
        if item.size_bytes < 0:
            raise errors.invalid(
                f"{path}.size_bytes", "must not be negative", reason="OUT_OF_RANGE"
            )
        url = text(item.url.strip(), f"{path}.url", max_length=2048)
        scheme = url.split(":", 1)[0] + "://" if "://" in url else ""
        if not url or any(ch.isspace() for ch in url) or (scheme and scheme not in _URL_SCHEMES):
            raise errors.invalid(
                f"{path}.url",
                "must be an https:// (or s3://, gs://) URL or a storage path",
                reason="INVALID_URL",
            )
        if not scheme and ":" in url.split("/", 1)[0]:
            raise errors.invalid(f"{path}.url", "has an unsupported scheme", reason="INVALID_URL")
        found.append(rules.Attachment(name, content_type.lower(), item.size_bytes or None, url))
    return tuple(found)


DECODERS: dict[str, Any] = {
    "job_id": lambda i: _short_id(i.job_id, "invoice.job_id"),
    "flex_transaction_id": lambda i: _short_id(
        i.flex_transaction_id, "invoice.flex_transaction_id"
    ),
    "attachments": _attachments,
    "type": _type,
    "direction": _direction,
    "number": _number,
    "issue_date": lambda i: _date(i.issue_date, "invoice.issue_date"),
    "due_date": lambda i: _date(i.due_date, "invoice.due_date"),
    "currency": lambda i: parse_currency(i.currency, "invoice.currency"),
    "notes": lambda i: text(i.notes, "invoice.notes", max_length=10000),
    "project_id": lambda i: ids.parse_uuid(i.project_id, "invoice.project_id"),
    "contract_id": lambda i: ids.parse_uuid(i.contract_id, "invoice.contract_id"),
    "po_id": lambda i: ids.parse_uuid(i.po_id, "invoice.po_id"),
    "order_id": _order_id,
    "document_ref": lambda i: text(i.document_ref, "invoice.document_ref", max_length=2048),
    "tags": _tags,
    "source": lambda i: text(i.source, "invoice.source", max_length=64) or "edm",
    "source_type": _source_type,
}


# ---- encoding ---------------------------------------------------------------------


def invoice_to_pb(
    inv: rules.Invoice,
    *,
    today: date,
    related: Sequence[tuple[str, rules.Invoice]] = (),
) -> pb.Invoice:
    d, cur = inv.draft, inv.draft.currency
    counterparty_id = str(d.counterparty_id) if d.counterparty_id else ""
    total = format_money(inv.total, cur)
    return pb.Invoice(
        id=ids.encode_id(INVOICE_PREFIX, inv.id),
        tenant_id=str(inv.tenant_id),
        app_id=inv.app_id or "",
        number=d.number or "",
        type=pb.INVOICE_TYPE_CUSTOMER if d.type == rules.CUSTOMER else pb.INVOICE_TYPE_SUPPLIER,
        direction=(
            pb.INVOICE_DIRECTION_RECEIVABLE
            if d.direction == rules.RECEIVABLE
            else pb.INVOICE_DIRECTION_PAYABLE
        ),
        status=STATUSES[inv.status],
        counterparty_id=counterparty_id,
        account_id=counterparty_id if d.type == rules.CUSTOMER else "",
        vendor_id=counterparty_id if d.type == rules.SUPPLIER else "",
        issue_date=_pb_date(d.issue_date),
        due_date=_pb_date(d.due_date),
        paid_at=_ts(inv.paid_at),
        paid_date=_pb_date(inv.paid_at.date() if inv.paid_at else None),
        currency=cur,
        subtotal=format_money(inv.subtotal, cur),
        tax_amount=format_money(inv.tax_amount, cur),
        discount_amount=format_money(inv.discount_amount, cur),
        total=total,
        amount=total,
        amount_paid=format_money(inv.amount_paid, cur),
        amount_due=format_money(inv.amount_due, cur),
        payment_status=PAYMENT[inv.payment_status],
        line_items=_lines_to_pb(inv),
        tax_breakdown=_breakdown_to_pb(inv),
        notes=d.notes,
        project_id=str(d.project_id) if d.project_id else "",
        contract_id=str(d.contract_id) if d.contract_id else "",
        po_id=str(d.po_id) if d.po_id else "",
        order_id=d.order_id,
        project_sequence_id=inv.project_sequence_id,
        document_ref=d.document_ref,
        tags=list(d.tags),
        source=d.source,
        source_type=SOURCE_TYPE_PB.get(d.source_type, common_pb2.SOURCE_TYPE_API),
        schema_version=inv.schema_version,
        is_deleted=inv.deleted_at is not None,
        created_at=_ts(inv.created_at),
        updated_at=_ts(inv.updated_at),
        created_by=inv.created_by,
        updated_by=inv.updated_by,
        created_by_id=inv.created_by,
        deleted_at=_ts(inv.deleted_at),
        deleted_by=inv.deleted_by or "",
        etag=inv.etag,
        issued_at=_ts(inv.issued_at),
        voided_at=_ts(inv.voided_at),
        void_reason=inv.void_reason,
        overdue=rules.is_overdue(inv, today),
        **_ingestion_to_pb(inv.ingestion),
        job_id=d.job_id or "",
        flex_transaction_id=d.flex_transaction_id or "",
        attachments=[attachment_to_pb(a) for a in d.attachments],
        parent_id=ids.encode_id(INVOICE_PREFIX, inv.parent_id) if inv.parent_id else "",
        is_aggregation_parent=inv.is_parent,
        related=[related_to_pb(r) for r in related],
    )


def attachment_to_pb(a: rules.Attachment) -> pb.Attachment:
    return pb.Attachment(
        name=a.name, content_type=a.content_type, size_bytes=a.size_bytes or 0, url=a.url
    )


def related_to_pb(item: tuple[str, rules.Invoice]) -> pb.RelatedInvoice:
    relation, inv = item
    cur = inv.draft.currency
    return pb.RelatedInvoice(
        relation=pb.RELATION_PARENT if relation == "parent" else pb.RELATION_CHILD,
        id=ids.encode_id(INVOICE_PREFIX, inv.id),
        number=inv.draft.number or "",
        status=STATUSES[inv.status],
        payment_status=PAYMENT[inv.payment_status],
        currency=cur,
        subtotal=format_money(inv.subtotal, cur),
        tax_amount=format_money(inv.tax_amount, cur),
        total=format_money(inv.total, cur),
    )


MATCH_STATUSES = {
    "matched": pb.MATCH_STATUS_MATCHED,
    "unmatched": pb.MATCH_STATUS_UNMATCHED,
    "ambiguous": pb.MATCH_STATUS_AMBIGUOUS,
}


def _ingestion_to_pb(ingestion: rules.Ingestion | None) -> dict[str, Any]:
    if ingestion is None:
        return {}
    totals = ingestion.totals
    return {
        "external": pb.ExternalDocument(
            provider=ingestion.provider,
            id=ingestion.external_id,
            updated_at=_ts(ingestion.updated_at),
            total_excluding_tax=str(totals.get("total_excluding_tax", "")),
            tax_amount=str(totals.get("tax_amount", "")),
            total=str(totals.get("total", "")),
        ),
        "supplier_match": pb.SupplierMatch(
            status=MATCH_STATUSES.get(ingestion.match_status or "", pb.MATCH_STATUS_UNSPECIFIED),
            reason=ingestion.match_reason,
            name=ingestion.supplier_name,
            siret=ingestion.supplier_siret,
            siren=ingestion.supplier_siren,
        ),
        "review_reason": ingestion.review_reason or "",
    }


def _lines_to_pb(inv: rules.Invoice) -> list[pb.LineItem]:
    if inv.stored_lines is not None:
        return [pb.LineItem(**item) for item in inv.stored_lines]
    return [_line_to_pb(line, inv.draft.currency) for line in inv.lines]


def _breakdown_to_pb(inv: rules.Invoice) -> list[pb.TaxBreakdown]:
    if inv.stored_breakdown is not None:
        return [pb.TaxBreakdown(**row) for row in inv.stored_breakdown]
    cur = inv.draft.currency
    return [
        pb.TaxBreakdown(
            tax_rate=format_decimal(row.tax_rate),
            taxable_amount=format_money(row.taxable_amount, cur),
            tax_amount=format_money(row.tax_amount, cur),
        )
        for row in inv.breakdown
    ]


def _line_to_pb(line: rules.Line, currency: str) -> pb.LineItem:
    item = line.input
    return pb.LineItem(
        description=item.description,
        quantity=format_decimal(item.quantity),
        unit_price=format_decimal(item.unit_price),
        tax_rate=format_decimal(item.tax_rate),
        discount_amount=format_money(item.discount_amount, currency),
        subtotal=format_money(line.subtotal, currency),
        amount=format_money(line.amount, currency),
        tax_amount=format_money(line.tax_amount, currency),
    )


DELIVERY_STATUSES = {
    "pending": pb.DELIVERY_STATUS_PENDING,
    "delivered": pb.DELIVERY_STATUS_DELIVERED,
    "failed": pb.DELIVERY_STATUS_FAILED,
}


def delivery_to_pb(row: Any) -> pb.InvoiceDelivery:
    return pb.InvoiceDelivery(
        id=str(row["id"]),
        invoice_id=ids.encode_id(INVOICE_PREFIX, row["invoice_id"]),
        connection_id=ids.encode_id(ids.PREFIXES["connection"], row["connection_id"]),
        status=DELIVERY_STATUSES[row["status"]],
        attempts=row["attempts"],
        last_status_code=row["last_status_code"] or 0,
        last_error=row["last_error"] or "",
        next_attempt_at=_ts(row["next_attempt_at"]) if row["status"] == "pending" else None,
        delivered_at=_ts(row["delivered_at"]),
        created_at=_ts(row["created_at"]),
    )


# ---- the seed 002 document (docs/invoice-document-contract.md) --------------------------


def document_to_pb(doc: Any, *, today: date) -> pb.InvoiceDocument:
    inv: rules.Invoice = doc.invoice
    d, cur = inv.draft, inv.draft.currency
    mine = str(doc.my_company_id) if doc.my_company_id else ""
    party = str(d.counterparty_id) if d.counterparty_id else ""
    supplier = d.type == rules.SUPPLIER
    client_id, supplier_id = (mine, party) if supplier else (party, mine)
    identifiers = pb.DocumentIdentifiers(
        id=ids.encode_id(INVOICE_PREFIX, inv.id),
        is_supplier_invoice=supplier,
        is_client_invoice=not supplier,
        client_company_id=client_id,
        client_is_internal=bool(mine) and client_id == mine,
        supplier_company_id=supplier_id,
        supplier_is_internal=bool(mine) and supplier_id == mine,
        project_id=str(d.project_id) if d.project_id else "",
        order_id=d.order_id,
        job_id=d.job_id,
        project_sequence_id=inv.project_sequence_id,
        flex_transaction_id=d.flex_transaction_id,
    )
    whole = invoice_to_pb(inv, today=today)
    properties = pb.DocumentProperties(
        status=STATUSES[inv.status],
        number=d.number or "",
        issue_date=_pb_date(d.issue_date),
        due_date=_pb_date(d.due_date),
        currency=cur,
        notes=d.notes,
        document_ref=d.document_ref,
        tags=list(d.tags),
        source=d.source,
        created_at=_ts(inv.created_at),
        updated_at=_ts(inv.updated_at),
        issued_at=_ts(inv.issued_at),
    )
    totals = pb.DocumentTotals(
        subtotal=whole.subtotal,
        discount_amount=whole.discount_amount,
        tax_amount=whole.tax_amount,
        total=whole.total,
        amount_paid=whole.amount_paid,
        amount_due=whole.amount_due,
        payment_status=whole.payment_status,
        tax_breakdown=whole.tax_breakdown,
    )
    children = [r for r in doc.related if r[0] == "child"]
    return pb.InvoiceDocument(
        identifiers=identifiers,
        properties=properties,
        lines=whole.line_items,
        totals=totals,
        attachments=pb.DocumentAttachments(files=whole.attachments),
        distribution=pb.DocumentDistribution(
            deliveries=[delivery_to_pb(row) for row in doc.deliveries]
        ),
        aggregation=pb.DocumentAggregation(
            is_parent=inv.is_parent,
            is_child=inv.parent_id is not None,
            parent_id=whole.parent_id,
            child_count=len(children),
        ),
        related=[related_to_pb(r) for r in doc.related],
    )
