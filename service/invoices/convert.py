"""Translate between protobuf messages and the invoice domain (the edge only).

Decoding validates every field's format and names the field on failure; the
business rules live in `rules.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
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
    parse_money,
)

pb = invoices_pb2
_ts = pbconv.ts
_pb_date = pbconv.pb_date
_date = pbconv.date_from_pb
text = pbconv.text
INVOICE_PREFIX = ids.PREFIXES["invoice"]
MAX_LINES = 500
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
    }
)
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
    paths = set(rules.DRAFT_FIELDS) - {"counterparty_id"}
    values = decode_fields(invoice, paths, parse_currency(invoice.currency, "invoice.currency"))
    values["counterparty_id"] = counterparty(invoice, TYPES[invoice.type])
    draft = rules.Draft(**values)
    return draft, claimed_totals(invoice, draft.currency, CHECKED_TOTALS)


def changes_for_update(
    invoice: pb.Invoice,
    mask_paths: Iterable[str],
    has_mask: bool,
    *,
    current: rules.Draft,
) -> tuple[dict[str, Any], dict[str, Decimal]]:
    """The changed domain fields of an UpdateInvoice request and any claimed totals.

    Values the request leaves out (currency, type) are taken from `current`.
    """
    paths = _update_paths(invoice, list(mask_paths), has_mask)
    field_paths = {p for p in paths if p in rules.DRAFT_FIELDS}
    effective_currency = (
        parse_currency(invoice.currency, "invoice.currency")
        if "currency" in paths
        else current.currency
    )
    changes = decode_fields(invoice, field_paths - {"counterparty_id"}, effective_currency)
    if paths & set(COUNTERPARTY_PATHS):
        invoice_type = changes.get("type", current.type)
        changes["counterparty_id"] = counterparty(invoice, invoice_type)
    claimed = claimed_totals(invoice, effective_currency, [p for p in paths if p in CHECKED_TOTALS])
    return changes, claimed


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


def decode_fields(invoice: pb.Invoice, paths: Iterable[str], currency: str) -> dict[str, Any]:
    """Decode the named fields; money in line items is read in `currency`."""
    return {
        path: _lines(invoice, currency) if path == "line_items" else DECODERS[path](invoice)
        for path in paths
    }


def counterparty(invoice: pb.Invoice, invoice_type: str | None) -> Any:
    """counterparty_id, account_id (customer) and vendor_id (supplier) name one party."""
    if invoice_type == rules.SUPPLIER and invoice.account_id:
        raise errors.invalid(
            "invoice.account_id", "is for customer invoices; use vendor_id", reason="WRONG_PARTY"
        )
    if invoice_type == rules.CUSTOMER and invoice.vendor_id:
        raise errors.invalid(
            "invoice.vendor_id", "is for supplier invoices; use account_id", reason="WRONG_PARTY"
        )
    found = None
    for name in COUNTERPARTY_PATHS:
        value = ids.parse_uuid(getattr(invoice, name), f"invoice.{name}")
        if value is not None and found is not None and value != found:
            raise errors.invalid(
                f"invoice.{name}", "must equal counterparty_id", reason="COUNTERPARTY_MISMATCH"
            )
        found = found or value
    return found


def claimed_totals(invoice: pb.Invoice, currency: str, names: Iterable[str]) -> dict[str, Decimal]:
    claimed = {}
    for name in names:
        raw = getattr(invoice, name)
        if raw:
            claimed[name] = parse_money(raw, currency, f"invoice.{name}")
    return claimed


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


def _line(item: pb.LineItem, currency: str, index: int) -> rules.LineInput:
    path = f"invoice.line_items[{index}]"
    return rules.LineInput(
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
        discount_amount=parse_money(
            item.discount_amount, currency, f"{path}.discount_amount", empty=Decimal(0)
        ),
    )


def _lines(invoice: pb.Invoice, currency: str) -> tuple[rules.LineInput, ...]:
    if len(invoice.line_items) > MAX_LINES:
        raise errors.invalid(
            "invoice.line_items", f"at most {MAX_LINES} line items", reason="TOO_MANY_ITEMS"
        )
    return tuple(_line(item, currency, i) for i, item in enumerate(invoice.line_items))


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


DECODERS: dict[str, Any] = {
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


def invoice_to_pb(inv: rules.Invoice, *, today: date) -> pb.Invoice:
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
    )


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
