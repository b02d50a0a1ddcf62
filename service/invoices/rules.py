"""Invoice domain rules: pure values in, values or domain errors out. No I/O.

Rounding model (declared in the proto and README):
  line subtotal = round_half_up(quantity x unit_price)
  line amount   = line subtotal - line discount          (the discount is exact)
  line tax      = round_half_up(line amount x tax_rate)
  subtotal, discount_amount, tax_amount = sums of the rounded line values
  total         = subtotal + tax_amount - discount_amount   (exact, no further rounding)
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from service.kit import errors, etags, ids
from service.kit.money import (
    format_money,
    money_multiply,
    parse_money,
    quantum,
    round_half_up,
)

CUSTOMER, SUPPLIER = "customer", "supplier"
RECEIVABLE, PAYABLE = "receivable", "payable"
DRAFT, ISSUED, VOID = "draft", "issued", "void"
UNPAID, PARTIALLY_PAID, PAID = "unpaid", "partially_paid", "paid"
DIRECTION_OF = {CUSTOMER: RECEIVABLE, SUPPLIER: PAYABLE}
ZERO = Decimal(0)
# Every stored amount stays below this, well inside NUMERIC(24, 4).
MAX_AMOUNT = Decimal(10) ** 18
MAX_LINES = 500  # line items per invoice

# Fields a client may write, by lifecycle status.
DRAFT_FIELDS = frozenset(
    {
        "number",
        "type",
        "direction",
        "counterparty_id",
        "issue_date",
        "due_date",
        "currency",
        "line_items",
        "notes",
        "project_id",
        "contract_id",
        "po_id",
        "order_id",
        "document_ref",
        "tags",
        "source",
        "source_type",
        "job_id",
        "flex_transaction_id",
        "attachments",
    }
)
ISSUED_FIELDS = frozenset({"notes", "tags", "due_date", "document_ref", "attachments"})
# What an aggregation parent keeps from its children: not editable on the parent.
PARENT_FIXED = frozenset(
    {"type", "direction", "currency", "counterparty_id", "project_id", "line_items"}
)
EDITABLE = {DRAFT: DRAFT_FIELDS, ISSUED: ISSUED_FIELDS, VOID: frozenset[str]()}
TOTAL_FIELDS = ("subtotal", "tax_amount", "discount_amount", "total")
# What a client may claim (checked against the computed totals) on a draft.
CLAIMABLE_TOTALS = frozenset({*TOTAL_FIELDS, "amount"})


@dataclass(frozen=True)
class LineInput:
    quantity: Decimal
    unit_price: Decimal
    description: str = ""
    tax_rate: Decimal = ZERO
    discount_amount: Decimal = ZERO


@dataclass(frozen=True)
class Line:
    input: LineInput
    subtotal: Decimal
    amount: Decimal
    tax_amount: Decimal


@dataclass(frozen=True)
class TaxRow:
    tax_rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal


@dataclass(frozen=True)
class Totals:
    lines: tuple[Line, ...]
    subtotal: Decimal
    discount_amount: Decimal
    tax_amount: Decimal
    total: Decimal
    breakdown: tuple[TaxRow, ...]


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size_bytes: int | None
    url: str


@dataclass(frozen=True)
class Draft:
    """Every client-writable field of an invoice, parsed and typed."""

    type: str
    currency: str
    direction: str | None = None
    number: str | None = None
    counterparty_id: uuid.UUID | None = None
    issue_date: date | None = None
    due_date: date | None = None
    line_items: Sequence[LineInput] = ()
    notes: str = ""
    project_id: uuid.UUID | None = None
    contract_id: uuid.UUID | None = None
    po_id: uuid.UUID | None = None
    order_id: int | None = None
    document_ref: str = ""
    tags: tuple[str, ...] = ()
    source: str = "edm"
    source_type: str = "api"
    job_id: str | None = None
    flex_transaction_id: str | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Invoice:
    """A stored invoice (one row)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    app_id: str | None
    draft: Draft
    status: str
    subtotal: Decimal
    tax_amount: Decimal
    discount_amount: Decimal
    total: Decimal
    lines: Sequence[Line]
    breakdown: Sequence[TaxRow]
    amount_paid: Decimal
    payment_status: str
    paid_at: datetime | None
    project_sequence_id: int | None
    schema_version: int
    version: int
    issued_at: datetime | None
    voided_at: datetime | None
    void_reason: str
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    deleted_at: datetime | None
    deleted_by: str | None
    # The stored (already formatted) form of lines and tax rows, when read from the
    # database: encoders use it as is instead of formatting the Decimals again.
    stored_lines: Sequence[Mapping[str, str]] | None = None
    stored_breakdown: Sequence[Mapping[str, str]] | None = None
    # Set on invoices ingested from a provider's document.
    ingestion: Ingestion | None = None
    # Seed 002 aggregation: this invoice's parent, or whether it is a parent.
    parent_id: uuid.UUID | None = None
    is_parent: bool = False

    @property
    def amount_due(self) -> Decimal:
        return self.total - self.amount_paid

    @property
    def etag(self) -> str:
        return etag_of(self.version)


@dataclass(frozen=True)
class Ingestion:
    """Where an ingested invoice came from, its supplier as named, how it was matched, and
    why a person should review it (None: no need)."""

    provider: str
    external_id: str
    updated_at: datetime | None
    totals: Mapping[str, str]
    supplier_name: str
    supplier_siret: str
    supplier_siren: str
    match_status: str | None
    match_reason: str
    review_reason: str | None


@dataclass(frozen=True)
class IncomingDocument:
    """A provider's supplier invoice, parsed by its adapter (amounts already exact)."""

    provider: str
    external_id: str
    updated_at: datetime
    rejected: bool
    number: str | None
    currency: str
    issue_date: date | None
    due_date: date | None
    lines: tuple[LineInput, ...]
    # The document's own figures, as sent and parsed.
    totals_text: Mapping[str, str]
    subtotal: Decimal
    tax_amount: Decimal
    total: Decimal
    document_url: str
    supplier_name: str
    supplier_siret: str
    supplier_siren: str


@dataclass(frozen=True)
class SupplierOutcome:
    """The matching decision for a document's supplier (from the counterparties)."""

    counterparty_id: uuid.UUID | None
    status: str
    reason: str
    siren: str


def ingested_totals(doc: IncomingDocument) -> tuple[Totals, str | None]:
    """The invoice's totals for a document, and why it needs review (None: it does not).
    Lines agreeing with the document's figures: the computed totals. Disagreeing: the
    document's own figures are kept (never rewritten) when they add up
    (excl. tax + tax = total), else the lines' totals; either way flagged for review."""
    computed = compute_totals(doc.lines, doc.currency)
    theirs = (doc.subtotal, doc.tax_amount, doc.total)
    ours = (computed.subtotal - computed.discount_amount, computed.tax_amount, computed.total)
    if theirs == ours:
        return computed, None
    cur = doc.currency
    said = ", ".join(format_money(v, cur) for v in theirs)
    lines = ", ".join(format_money(v, cur) for v in ours)
    reason = (
        f"the document's totals (excl. tax, tax, total: {said}) disagree with its lines "
        f"under the rounding model ({lines})"
    )
    if doc.subtotal + doc.tax_amount != doc.total:
        return (
            computed,
            reason + "; the document's own figures do not add up, so the lines' are used",
        )
    kept = dataclasses.replace(
        computed,
        subtotal=doc.subtotal,
        discount_amount=ZERO,
        tax_amount=doc.tax_amount,
        total=doc.total,
    )
    return kept, reason + "; the document's figures are kept"


@dataclass(frozen=True)
class PendingLine:
    """A line item as decoded at the edge; its discount, money in the invoice's currency,
    waits for the currency (an update may not name it)."""

    quantity: Decimal
    unit_price: Decimal
    description: str = ""
    tax_rate: Decimal = ZERO
    discount_amount: str = ""


@dataclass(frozen=True)
class Parties:
    """counterparty_id, account_id (customer invoices) and vendor_id (supplier invoices):
    three names for one party."""

    counterparty_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    vendor_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Patch:
    """An UpdateInvoice as decoded at the edge, before the row is read: the fields it
    changes (decoded), and what needs the stored invoice to be decoded (line discounts and
    claimed totals need its currency, the parties its type)."""

    paths: frozenset[str]
    values: Mapping[str, Any]
    lines: tuple[PendingLine, ...] | None = None
    parties: Parties | None = None
    claimed: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Payment:
    """A PayInvoice as decoded at the edge; `amount` ("" = the amount due) is parsed in
    the payment's currency by the use case."""

    invoice_id: uuid.UUID
    amount: str = ""
    currency: str | None = None
    paid_at: datetime | None = None
    reference: str = ""
    etag: str = ""


def resolve_patch(patch: Patch, current: Draft) -> tuple[dict[str, Any], dict[str, Decimal]]:
    """The changes of `patch` to the stored draft `current`, and the totals it claims.
    Values the patch leaves out (currency, type) are the stored ones."""
    changes = dict(patch.values)
    currency = changes.get("currency", current.currency)
    if patch.lines is not None:
        changes["line_items"] = resolve_lines(patch.lines, currency)
    if patch.parties is not None:
        changes["counterparty_id"] = resolve_party(patch.parties, changes.get("type", current.type))
    return changes, resolve_claimed(patch.claimed, currency)


def resolve_lines(lines: Sequence[PendingLine], currency: str) -> tuple[LineInput, ...]:
    return tuple(
        LineInput(
            quantity=line.quantity,
            unit_price=line.unit_price,
            description=line.description,
            tax_rate=line.tax_rate,
            discount_amount=parse_money(
                line.discount_amount,
                currency,
                f"invoice.line_items[{index}].discount_amount",
                empty=ZERO,
            ),
        )
        for index, line in enumerate(lines)
    )


def resolve_party(parties: Parties, invoice_type: str | None) -> uuid.UUID | None:
    """The one party the three fields name, checked against the invoice's type."""
    if invoice_type == SUPPLIER and parties.account_id is not None:
        raise errors.invalid(
            "invoice.account_id", "is for customer invoices; use vendor_id", reason="WRONG_PARTY"
        )
    if invoice_type == CUSTOMER and parties.vendor_id is not None:
        raise errors.invalid(
            "invoice.vendor_id", "is for supplier invoices; use account_id", reason="WRONG_PARTY"
        )
    found = None
    for name in ("counterparty_id", "account_id", "vendor_id"):
        value = getattr(parties, name)
        if value is not None and found is not None and value != found:
            raise errors.invalid(
                f"invoice.{name}", "must equal counterparty_id", reason="COUNTERPARTY_MISMATCH"
            )
        found = found or value
    return found


def resolve_claimed(claimed: Mapping[str, str], currency: str) -> dict[str, Decimal]:
    return {
        name: parse_money(raw, currency, f"invoice.{name}") for name, raw in claimed.items() if raw
    }


def compute_line(line: LineInput, currency: str, index: int) -> Line:
    path = f"invoice.line_items[{index}]"
    subtotal = round_half_up(money_multiply(line.quantity, line.unit_price), currency)
    _check_magnitude(subtotal, path)
    if line.discount_amount % quantum(currency) != 0:
        raise errors.invalid(
            f"{path}.discount_amount",
            f"must be exact to the minor unit of {currency}",
            reason="TOO_MANY_DECIMAL_PLACES",
        )
    if line.discount_amount > subtotal:
        raise errors.invalid(
            f"invoice.line_items[{index}].discount_amount",
            "must not exceed the line subtotal (quantity x unit_price)",
            reason="DISCOUNT_EXCEEDS_SUBTOTAL",
        )
    amount = subtotal - line.discount_amount
    tax = round_half_up(money_multiply(amount, line.tax_rate), currency)
    return Line(input=line, subtotal=subtotal, amount=amount, tax_amount=tax)


def compute_totals(items: Sequence[LineInput], currency: str) -> Totals:
    lines = tuple(compute_line(item, currency, i) for i, item in enumerate(items))
    subtotal = sum((line.subtotal for line in lines), ZERO)
    discount = sum((line.input.discount_amount for line in lines), ZERO)
    tax = sum((line.tax_amount for line in lines), ZERO)
    _check_magnitude(subtotal + tax, "invoice.line_items")
    return Totals(
        lines=lines,
        subtotal=subtotal,
        discount_amount=discount,
        tax_amount=tax,
        total=subtotal + tax - discount,
        breakdown=tax_breakdown(lines),
    )


def _check_magnitude(value: Decimal, field_path: str) -> None:
    if abs(value) >= MAX_AMOUNT:
        raise errors.invalid(
            field_path,
            f"amounts must stay below {MAX_AMOUNT:f}",
            reason="AMOUNT_TOO_LARGE",
        )


def tax_breakdown(lines: Iterable[Line]) -> tuple[TaxRow, ...]:
    groups: dict[Decimal, tuple[Decimal, Decimal]] = {}
    for line in lines:
        rate = line.input.tax_rate.normalize()
        taxable, tax = groups.get(rate, (ZERO, ZERO))
        groups[rate] = (taxable + line.amount, tax + line.tax_amount)
    return tuple(TaxRow(rate, taxable, tax) for rate, (taxable, tax) in sorted(groups.items()))


def check_claimed_totals(totals: Totals, claimed: Mapping[str, Decimal]) -> None:
    """A client-sent total (or subtotal, tax, discount, amount) must equal ours."""
    computed = {
        "subtotal": totals.subtotal,
        "tax_amount": totals.tax_amount,
        "discount_amount": totals.discount_amount,
        "total": totals.total,
        "amount": totals.total,
    }
    for name, value in claimed.items():
        if value != computed[name]:
            raise errors.invalid(
                f"invoice.{name}",
                f"does not match the computed value {computed[name]}",
                reason="TOTAL_MISMATCH",
                computed=str(computed[name]),
                sent=str(value),
            )


def resolve_direction(invoice_type: str, direction: str | None) -> str:
    expected = DIRECTION_OF[invoice_type]
    if direction is not None and direction != expected:
        raise errors.invalid(
            "invoice.direction",
            f"a {invoice_type} invoice is {expected}",
            reason="TYPE_DIRECTION_MISMATCH",
        )
    return expected


def validate_draft(draft: Draft, *, status: str = DRAFT) -> Draft:
    """Cross-field rules; returns the draft with the direction resolved.

    Past the draft stage the number is the one assigned at issue, so only the
    date rule applies.
    """
    direction = resolve_direction(draft.type, draft.direction)
    if status == DRAFT and draft.type == CUSTOMER and draft.number:
        raise errors.invalid(
            "invoice.number",
            "customer invoice numbers are assigned at issue",
            reason="NUMBER_ASSIGNED_AT_ISSUE",
        )
    if draft.issue_date and draft.due_date and draft.due_date < draft.issue_date:
        raise errors.invalid(
            "invoice.due_date", "must not be before issue_date", reason="DUE_BEFORE_ISSUE"
        )
    if draft.job_id and draft.type != SUPPLIER:
        raise errors.invalid(
            "invoice.job_id",
            "links supplier invoices only (seed 002)",
            reason="JOB_ID_SUPPLIER_ONLY",
        )
    return dataclasses.replace(draft, direction=direction)


def check_not_aggregated(invoice: Invoice, action: str) -> None:
    """An aggregated child is locked: everything happens on its parent."""
    if invoice.parent_id is not None:
        parent = ids.encode_id(ids.PREFIXES["invoice"], invoice.parent_id)
        raise errors.failed_precondition(
            f"cannot {action}: the invoice is aggregated into {parent}; act on the parent "
            "or release the aggregation",
            "INVOICE_AGGREGATED",
            parentId=parent,
        )


def sum_totals(children: Sequence[Invoice], currency: str) -> Totals:
    """A parent's totals: its children's lines, and exactly the sums of their totals (the
    lines are the children's stored ones, so nothing is rounded again)."""
    lines = tuple(line for child in children for line in child.lines)
    rows: dict[Decimal, list[Decimal]] = {}
    for child in children:
        for row in child.breakdown:
            acc = rows.setdefault(row.tax_rate, [ZERO, ZERO])
            acc[0] += row.taxable_amount
            acc[1] += row.tax_amount
    return Totals(
        lines=lines,
        subtotal=sum((c.subtotal for c in children), ZERO),
        discount_amount=sum((c.discount_amount for c in children), ZERO),
        tax_amount=sum((c.tax_amount for c in children), ZERO),
        total=sum((c.total for c in children), ZERO),
        breakdown=tuple(TaxRow(rate, a, t) for rate, (a, t) in sorted(rows.items())),
    )


def check_editable(status: str, paths: Iterable[str]) -> None:
    allowed = EDITABLE[status]
    for path in paths:
        if path not in allowed:
            raise errors.failed_precondition(
                f"{path} cannot be changed on a {status} invoice",
                "FIELD_NOT_EDITABLE",
                field=path,
                status=status,
            )


def check_issuable(invoice: Invoice) -> None:
    if invoice.status != DRAFT:
        raise errors.failed_precondition(
            f"only draft invoices can be issued; this one is {invoice.status}",
            "INVOICE_NOT_DRAFT",
            status=invoice.status,
        )
    missing = [
        name
        for name, absent in (
            ("line_items", not invoice.lines),
            ("counterparty_id", invoice.draft.counterparty_id is None),
            ("number", invoice.draft.type == SUPPLIER and not invoice.draft.number),
        )
        if absent
    ]
    if missing:
        raise errors.failed_precondition(
            f"cannot issue: missing {', '.join(missing)}",
            "INVOICE_INCOMPLETE",
            missing=",".join(missing),
        )


def check_voidable(invoice: Invoice) -> None:
    if invoice.status != ISSUED:
        raise errors.failed_precondition(
            f"only issued invoices can be voided; this one is {invoice.status}",
            "INVOICE_NOT_ISSUED",
            status=invoice.status,
        )
    if invoice.amount_paid > ZERO:
        raise errors.failed_precondition(
            "reverse the invoice's allocations before voiding it",
            "INVOICE_HAS_ALLOCATIONS",
            amountPaid=str(invoice.amount_paid),
        )


def check_deletable(invoice: Invoice) -> None:
    if invoice.status != DRAFT:
        raise errors.failed_precondition(
            f"only drafts can be deleted; void an {invoice.status} invoice instead",
            "INVOICE_NOT_DRAFT",
            status=invoice.status,
        )


def check_etag(invoice: Invoice, etag: str) -> None:
    etags.check(invoice.etag, etag, "invoice")


etag_of = etags.etag_of
normalize_etag = etags.normalize_etag


def payment_status(total: Decimal, paid: Decimal) -> str:
    if paid <= ZERO:
        return UNPAID
    return PAID if paid >= total else PARTIALLY_PAID


def invoice_number(prefix: str, year: int, sequence: int) -> str:
    return f"{prefix}-{year}-{sequence:04d}"


def is_overdue(invoice: Invoice, today: date) -> bool:
    due = invoice.draft.due_date
    return (
        invoice.status == ISSUED
        and invoice.payment_status != PAID
        and due is not None
        and due < today
    )
