"""Invoice use cases. Each runs inside the caller's transaction and never commits.

Other resources use invoices only through this module: `lock_for_payment` and
`apply_payment` serve the allocations; `Invoice`, `Payment` and `LISTING` (the list's
fields, which related-object filters such as `invoice.total` reuse) are public.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func

from service.connections import service as connections
from service.invoices import repository, rules
from service.invoices.queries import INVOICES
from service.invoices.rules import (
    IncomingDocument,
    Invoice,
    LineInput,
    Payment,
    SupplierOutcome,
)
from service.kit import db, errors, ids, listing, work
from service.kit.auth import Principal
from service.kit.deps import Deps
from service.provenance import service as provenance
from service.workspaces import service as workspaces

LISTING = INVOICES
__all__ = [
    "LISTING",
    "IncomingDocument",
    "Invoice",
    "LineInput",
    "Payment",
    "SupplierOutcome",
]


async def create_invoice(
    conn: db.Conn,
    principal: Principal,
    *,
    draft: rules.Draft,
    claimed: Mapping[str, Decimal],
) -> rules.Invoice:
    draft = rules.validate_draft(draft)
    totals = rules.compute_totals(draft.line_items, draft.currency)
    rules.check_claimed_totals(totals, claimed)
    values = repository.draft_values(draft, totals)
    values.update(
        tenant_id=principal.tenant_id,
        id=ids.new_uuid7(),
        app_id=principal.app_id,
        status=rules.DRAFT,
        created_by=principal.subject,
        updated_by=principal.subject,
    )
    return await repository.insert(conn, values)


async def get_invoice(
    conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID
) -> rules.Invoice:
    invoice = await repository.get(conn, principal, invoice_id)
    if invoice is None:
        raise _not_found(invoice_id)
    return invoice


async def update_invoice(
    conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID, patch: rules.Patch, etag: str
) -> rules.Invoice:
    """Apply `patch` to the locked invoice (its currency and type are read under the lock)."""
    invoice = await _locked_live(conn, principal, invoice_id)
    rules.check_not_aggregated(invoice, "update it")
    changes, claimed = rules.resolve_patch(patch, invoice.draft)
    rules.check_etag(invoice, etag)
    if invoice.is_parent and set(changes) & rules.PARENT_FIXED:
        raise errors.failed_precondition(
            "an aggregation parent keeps its children's type, parties, currency, project and "
            "lines; release the aggregation to change them",
            "AGGREGATION_PARENT_FIXED",
            fields=",".join(sorted(set(changes) & rules.PARENT_FIXED)),
        )
    rules.check_editable(invoice.status, changes)
    if invoice.status != rules.DRAFT:  # money is frozen past the draft: no total to claim
        rules.check_editable(invoice.status, sorted(patch.paths & rules.CLAIMABLE_TOTALS))
    draft = dataclasses.replace(invoice.draft, **changes)
    if "type" in changes and "direction" not in changes:
        draft = dataclasses.replace(draft, direction=None)
    draft = rules.validate_draft(draft, status=invoice.status)
    if invoice.status != rules.DRAFT:
        values = {name: _column_value(name, getattr(draft, name)) for name in changes}
        return await repository.update(conn, principal, invoice_id, values)
    totals = rules.compute_totals(draft.line_items, draft.currency)
    rules.check_claimed_totals(totals, claimed)
    return await repository.update(
        conn, principal, invoice_id, repository.draft_values(draft, totals)
    )


async def delete_invoice(
    conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID, etag: str
) -> rules.Invoice:
    invoice = await _locked_live(conn, principal, invoice_id)
    rules.check_not_aggregated(invoice, "delete it")
    rules.check_etag(invoice, etag)
    if invoice.is_parent:
        raise errors.failed_precondition(
            "an aggregation parent is deleted by releasing the aggregation",
            "AGGREGATION_PARENT",
        )
    rules.check_deletable(invoice)
    return await repository.update(
        conn, principal, invoice_id, {"deleted_at": func.now(), "deleted_by": principal.subject}
    )


async def undelete_invoice(
    conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID, etag: str
) -> rules.Invoice:
    invoice = await _locked(conn, principal, invoice_id)
    rules.check_etag(invoice, etag)
    if invoice.deleted_at is None:
        raise errors.already_exists("the invoice is not deleted", "INVOICE_NOT_DELETED")
    return await repository.update(
        conn, principal, invoice_id, {"deleted_at": None, "deleted_by": None}
    )


async def issue_invoice(
    conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID, etag: str, deps: Deps
) -> rules.Invoice:
    invoice = await _locked_live(conn, principal, invoice_id)
    rules.check_not_aggregated(invoice, "issue it")
    rules.check_etag(invoice, etag)
    rules.check_issuable(invoice)
    draft = invoice.draft
    issue_date = draft.issue_date or deps.today()
    if draft.due_date is not None and draft.due_date < issue_date:
        raise errors.failed_precondition(
            "due_date is before the issue date", "DUE_BEFORE_ISSUE", issueDate=str(issue_date)
        )
    values: dict[str, Any] = {
        "status": rules.ISSUED,
        "issue_date": issue_date,
        "issued_at": func.now(),
    }
    if draft.type == rules.CUSTOMER:
        sequence = await repository.next_number(conn, principal.tenant_id, issue_date.year)
        values["number"] = rules.invoice_number(
            deps.settings.invoice_number_prefix, issue_date.year, sequence
        )
    if draft.project_id is not None:
        values["project_sequence_id"] = await repository.next_project_sequence(
            conn, principal.tenant_id, draft.project_id, draft.type
        )
    issued = await repository.update(conn, principal, invoice_id, values)
    if await connections.has_outbound(conn, principal):
        # Routed out by the worker (DELIVER_TASK), after this transaction commits.
        await work.enqueue(conn, principal.tenant_id, DELIVER_TASK, str(invoice_id))
    return issued


# ---- outbound delivery (provider `webhook`) ---------------------------------------------

DELIVER_TASK = "invoices.deliver"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclasses.dataclass(frozen=True)
class Sent:
    """One attempt's outcome: the HTTP status (0: no answer) and a sanitised error."""

    status_code: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


async def deliver(
    conn: db.Conn,
    principal: Principal,
    *,
    invoice_id: uuid.UUID,
    deps: Deps,
    render: Any,
    send: Any,
) -> tuple[bool, timedelta | None]:
    """Attempt the due deliveries of an issued invoice to every active outbound connection
    (`render(invoice) -> bytes`, `send(target, delivery_id, body) -> Sent`, awaited).
    A 2xx records an OUTPUT provenance row; a failure is retried with exponential backoff
    and jitter, up to DELIVERY_MAX_ATTEMPTS. Returns (finished, next attempt in)."""
    invoice = await repository.get(conn, principal, invoice_id)
    if invoice is None or invoice.status != rules.ISSUED or invoice.deleted_at is not None:
        return True, None
    targets = await connections.delivery_targets(conn, principal, keys=deps.keys)
    body: bytes | None = None
    waits: list[timedelta] = []
    for target in targets:
        row = await repository.delivery_for(conn, principal, invoice_id, target.connection_id)
        if row["status"] != PENDING:
            continue
        due_in = row["wait"]
        if due_in is not None and due_in > timedelta(0):
            waits.append(due_in)
            continue
        if target.problem:
            sent = Sent(0, target.problem)
        else:
            body = body if body is not None else render(invoice)
            sent = await send(target, row["id"], body)
        attempts = row["attempts"] + 1
        if sent.ok:
            await repository.delivery_done(conn, principal, row["id"], attempts, sent.status_code)
            await provenance.record(
                conn,
                principal,
                invoice_id=invoice_id,
                connection_id=target.connection_id,
                direction=provenance.OUTPUT,
            )
            continue
        give_up = attempts >= deps.settings.delivery_max_attempts
        retry = None if give_up else _delivery_backoff(attempts)
        await repository.delivery_failed(
            conn, principal, row["id"], attempts, sent.status_code, sent.error, retry
        )
        if retry is not None:
            waits.append(retry)
    if not waits:
        return True, None
    return False, min(waits)


def _delivery_backoff(attempts: int) -> timedelta:
    """10 s, 20 s, 40 s ... capped at an hour, with full jitter over the upper half."""
    ceiling = min(10.0 * 2 ** (attempts - 1), 3600.0)
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))  # noqa: S311 (jitter)


async def list_deliveries(
    conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID
) -> list[Mapping[str, Any]]:
    await get_invoice(conn, principal, invoice_id=invoice_id)
    return await repository.deliveries_of(conn, principal, invoice_id)


async def void_invoice(
    conn: db.Conn,
    principal: Principal,
    *,
    invoice_id: uuid.UUID,
    etag: str,
    reason: str,
) -> rules.Invoice:
    invoice = await _locked_live(conn, principal, invoice_id)
    rules.check_not_aggregated(invoice, "void it")
    rules.check_etag(invoice, etag)
    rules.check_voidable(invoice)
    return await repository.update(
        conn,
        principal,
        invoice_id,
        {"status": rules.VOID, "voided_at": func.now(), "void_reason": reason},
    )


async def lock_for_payment(
    conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID
) -> rules.Invoice:
    """The invoice, row-locked until the transaction ends. Allocation writes lock the
    invoice before the transaction row: one fixed order, so they cannot deadlock. An
    aggregated child is paid through its parent."""
    invoice = await _locked_live(conn, principal, invoice_id)
    rules.check_not_aggregated(invoice, "pay it")
    return invoice


async def apply_payment(
    conn: db.Conn,
    principal: Principal,
    *,
    invoice: rules.Invoice,
    delta: Decimal,
    paid_at: datetime | None = None,
) -> rules.Invoice:
    """Add `delta` (negative for a reversal) to the locked invoice's amount paid and
    recompute its payment status; `paid_at` is set when it becomes paid, else cleared."""
    amount_paid = invoice.amount_paid + delta
    status = rules.payment_status(invoice.total, amount_paid)
    paid = None
    if status == rules.PAID:
        paid = invoice.paid_at if invoice.payment_status == rules.PAID else paid_at
    updated = await repository.record_payment(
        conn,
        principal,
        invoice.id,
        amount_paid=amount_paid,
        payment_status=status,
        paid_at=paid,
        paid_now=status == rules.PAID and paid is None,
    )
    if updated.is_parent:
        # The children's payment status follows their parent's (their payment is its).
        await repository.children_follow(conn, principal, updated)
    return updated


# ---- aggregation (seed 002) --------------------------------------------------------------

MAX_CHILDREN = 100


async def aggregate(
    conn: db.Conn, principal: Principal, *, child_ids: Sequence[uuid.UUID], notes: str
) -> rules.Invoice:
    """A draft parent from draft children: locked in id order (two aggregations sharing a
    child wait for each other; the second then finds it taken)."""
    children = []
    for child_id in sorted(set(child_ids)):
        child = await _locked_live(conn, principal, child_id)
        public = ids.encode_id(ids.PREFIXES["invoice"], child_id)
        if child.parent_id is not None:
            rules.check_not_aggregated(child, f"aggregate {public}")
        if child.is_parent:
            raise errors.failed_precondition(
                f"{public} is an aggregation parent", "AGGREGATION_PARENT", invoiceId=public
            )
        if child.status != rules.DRAFT:
            raise errors.failed_precondition(
                f"{public} is {child.status}; only drafts are aggregated",
                "INVOICE_NOT_DRAFT",
                invoiceId=public,
            )
        children.append(child)
    first = children[0].draft
    if first.project_id is None:
        raise errors.failed_precondition(
            "an aggregation parent is attached to a project: the children have none",
            "PROJECT_REQUIRED",
        )
    for child in children[1:]:
        d = child.draft
        for name in ("type", "counterparty_id", "currency", "project_id"):
            if getattr(d, name) != getattr(first, name):
                public = ids.encode_id(ids.PREFIXES["invoice"], child.id)
                raise errors.failed_precondition(
                    f"{public} has another {name} than the other children",
                    "CHILDREN_DIFFER",
                    field=name,
                    invoiceId=public,
                )
    totals = rules.sum_totals(children, first.currency)
    if len(totals.lines) > rules.MAX_LINES:
        raise errors.invalid(
            "child_ids", f"the parent would have over {rules.MAX_LINES} lines", reason="TOO_MANY"
        )
    draft = rules.Draft(
        type=first.type,
        direction=first.direction,
        currency=first.currency,
        counterparty_id=first.counterparty_id,
        project_id=first.project_id,
        line_items=tuple(line.input for line in totals.lines),
        notes=notes,
    )
    parent_id = ids.new_uuid7()
    values = repository.draft_values(draft, totals)
    values.update(
        tenant_id=principal.tenant_id,
        id=parent_id,
        app_id=principal.app_id,
        status=rules.DRAFT,
        is_parent=True,
        created_by=principal.subject,
        updated_by=principal.subject,
    )
    parent = await repository.insert(conn, values)
    for child in children:
        await repository.update(conn, principal, child.id, {"parent_id": parent_id})
    return parent


async def release(
    conn: db.Conn, principal: Principal, *, parent_id: uuid.UUID, etag: str
) -> list[rules.Invoice]:
    """Unlock a draft parent's children and delete the parent."""
    parent = await _locked_live(conn, principal, parent_id)
    rules.check_etag(parent, etag)
    if not parent.is_parent:
        raise errors.failed_precondition("not an aggregation parent", "NOT_AGGREGATION_PARENT")
    if parent.status != rules.DRAFT:
        raise errors.failed_precondition(
            f"the parent is {parent.status}; only a draft parent is released",
            "INVOICE_NOT_DRAFT",
        )
    children = await repository.children_of(conn, principal, parent_id, lock=True)
    released = [
        await repository.update(conn, principal, child.id, {"parent_id": None})
        for child in children
    ]
    await repository.update(
        conn, principal, parent_id, {"deleted_at": func.now(), "deleted_by": principal.subject}
    )
    return released


async def related_of(
    conn: db.Conn, principal: Principal, invoice: rules.Invoice
) -> list[tuple[str, rules.Invoice]]:
    """Seed 002 `related`: a child's parent, a parent's children (nothing else asks)."""
    if invoice.parent_id is not None:
        parent = await repository.get(conn, principal, invoice.parent_id)
        return [("parent", parent)] if parent is not None else []
    if invoice.is_parent:
        return [("child", c) for c in await repository.children_of(conn, principal, invoice.id)]
    return []


@dataclasses.dataclass(frozen=True)
class Document:
    """What the seed 002 document is made of."""

    invoice: rules.Invoice
    related: list[tuple[str, rules.Invoice]]
    deliveries: list[Mapping[str, Any]]
    my_company_id: uuid.UUID | None


async def document(conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID) -> Document:
    invoice = await get_invoice(conn, principal, invoice_id=invoice_id)
    settings = await workspaces.get_settings(conn, principal)
    return Document(
        invoice=invoice,
        related=await related_of(conn, principal, invoice),
        deliveries=await repository.deliveries_of(conn, principal, invoice_id),
        my_company_id=settings.company_id,
    )


async def list_invoices(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> listing.Page[Invoice]:
    page = await listing.list_page(conn, principal, INVOICES, query, deps.cursors)
    return page.map(repository.from_row)


@dataclasses.dataclass(frozen=True)
class Ingested:
    """What ingesting one document did: created, updated, unchanged or skipped (why)."""

    outcome: str
    invoice: rules.Invoice | None
    reason: str = ""


CREATED, UPDATED, UNCHANGED, SKIPPED = "created", "updated", "unchanged", "skipped"


async def ingest(
    conn: db.Conn,
    principal: Principal,
    *,
    doc: rules.IncomingDocument,
    supplier: rules.SupplierOutcome,
) -> Ingested:
    """Apply a provider's document, idempotently on (tenant, provider, document id): a new
    one becomes a supplier draft; a later `updated_at` updates the draft (an issued or void
    invoice records it and stays as it is); a rejected one deletes the draft (voids an
    issued one when nothing is paid on it) and is never created."""
    tenant = principal.tenant_id
    current = await repository.lock_external(conn, tenant, doc.provider, doc.external_id)
    if current is None:
        if doc.rejected:
            return Ingested(SKIPPED, None, "rejected before it was ingested")
        return Ingested(CREATED, await _insert_ingested(conn, principal, doc, supplier))
    seen = current.ingestion.updated_at if current.ingestion else None
    if seen is not None and doc.updated_at <= seen:
        return Ingested(UNCHANGED, current)
    stamp = {"external_updated_at": doc.updated_at}
    if doc.rejected:
        return await _reject(conn, principal, current, stamp)
    if current.status != rules.DRAFT:
        note = (
            f"the provider changed the document on {doc.updated_at.isoformat()} after the "
            f"invoice was {current.status}; the change was not applied"
        )
        updated = await repository.update(
            conn, principal, current.id, {**stamp, "review_reason": note}
        )
        return Ingested(SKIPPED, updated, note)
    values = await _ingested_values(conn, principal, doc, supplier, current.id)
    values.update(deleted_at=None, deleted_by=None)  # re-approved after a rejection
    return Ingested(UPDATED, await repository.update(conn, principal, current.id, values))


async def applied_at(
    conn: db.Conn, principal: Principal, provider: str, external_id: str
) -> datetime | None:
    """The `updated_at` of a provider's document as last applied (None: never ingested),
    so that a document seen again costs one indexed read."""
    return await repository.external_updated_at(conn, principal.tenant_id, provider, external_id)


async def match_unmatched(
    conn: db.Conn,
    principal: Principal,
    *,
    siren: str,
    decide: Any,
) -> int:
    """Give the still-unmatched ingested drafts of a SIREN a new matching decision
    (`decide(siret, siren) -> SupplierOutcome`, awaited); returns how many now match."""
    matched = 0
    for invoice in await repository.unmatched_by_siren(conn, principal, siren):
        assert invoice.ingestion is not None
        outcome = await decide(invoice.ingestion.supplier_siret, invoice.ingestion.supplier_siren)
        if outcome.status != "matched":
            continue
        values: dict[str, Any] = {
            "match_status": outcome.status,
            "match_reason": outcome.reason,
        }
        if invoice.status == rules.DRAFT:
            values["counterparty_id"] = outcome.counterparty_id
        await repository.update(conn, principal, invoice.id, values)
        matched += 1
    return matched


async def _insert_ingested(
    conn: db.Conn,
    principal: Principal,
    doc: rules.IncomingDocument,
    supplier: rules.SupplierOutcome,
) -> rules.Invoice:
    invoice_id = ids.new_uuid7()
    values = await _ingested_values(conn, principal, doc, supplier, invoice_id)
    values.update(
        tenant_id=principal.tenant_id,
        id=invoice_id,
        app_id=None,
        status=rules.DRAFT,
        created_by=principal.subject,
        updated_by=principal.subject,
    )
    return await repository.insert(conn, values)


async def _ingested_values(
    conn: db.Conn,
    principal: Principal,
    doc: rules.IncomingDocument,
    supplier: rules.SupplierOutcome,
    invoice_id: uuid.UUID,
) -> dict[str, Any]:
    totals, review = rules.ingested_totals(doc)
    number = doc.number
    if number and supplier.counterparty_id is not None:
        taken = await repository.supplier_number_taken(
            conn, principal.tenant_id, supplier.counterparty_id, number, invoice_id
        )
        if taken is not None:
            clash = (
                f"the supplier's number {number} is already on invoice "
                f"{ids.encode_id(ids.PREFIXES['invoice'], taken)}; left blank here"
            )
            review = f"{review}; {clash}" if review else clash
            number = None
    draft = rules.Draft(
        type="supplier",
        direction="payable",
        currency=doc.currency,
        number=number,
        counterparty_id=supplier.counterparty_id,
        issue_date=doc.issue_date,
        due_date=doc.due_date
        if doc.issue_date is None or doc.due_date is None or doc.due_date >= doc.issue_date
        else None,
        line_items=doc.lines,
        document_ref=doc.document_url,
        source=doc.provider,
        source_type="system",
        attachments=(
            (
                rules.Attachment(
                    name=f"{doc.external_id}.pdf"
                    if doc.document_url.lower().endswith(".pdf")
                    else doc.external_id,
                    content_type="application/pdf"
                    if doc.document_url.lower().endswith(".pdf")
                    else "",
                    size_bytes=None,
                    url=doc.document_url,
                ),
            )
            if doc.document_url
            else ()
        ),
    )
    values = repository.draft_values(draft, totals)
    values.update(repository.ingestion_values(doc, supplier, review))
    return values


async def _reject(
    conn: db.Conn, principal: Principal, current: rules.Invoice, stamp: dict[str, Any]
) -> Ingested:
    if current.deleted_at is not None or current.status == rules.VOID:
        return Ingested(UNCHANGED, current)
    if current.status == rules.DRAFT:
        values = {**stamp, "deleted_at": func.now(), "deleted_by": principal.subject}
        return Ingested(UPDATED, await repository.update(conn, principal, current.id, values))
    if current.amount_paid == 0:
        values = {
            **stamp,
            "status": rules.VOID,
            "voided_at": func.now(),
            "void_reason": "rejected by the provider",
        }
        return Ingested(UPDATED, await repository.update(conn, principal, current.id, values))
    note = "the provider rejected the document, but payments are allocated to the invoice"
    updated = await repository.update(conn, principal, current.id, {**stamp, "review_reason": note})
    return Ingested(SKIPPED, updated, note)


async def get_live(conn: db.Conn, principal: Principal, *, invoice_id: uuid.UUID) -> rules.Invoice:
    """The invoice unless unknown, deleted or another tenant's (NOT_FOUND)."""
    invoice = await repository.get(conn, principal, invoice_id)
    if invoice is None or invoice.deleted_at is not None:
        raise _not_found(invoice_id)
    return invoice


async def _locked(conn: db.Conn, principal: Principal, invoice_id: uuid.UUID) -> rules.Invoice:
    invoice = await repository.get(conn, principal, invoice_id, for_update=True)
    if invoice is None:
        raise _not_found(invoice_id)
    return invoice


async def _locked_live(conn: db.Conn, principal: Principal, invoice_id: uuid.UUID) -> rules.Invoice:
    invoice = await _locked(conn, principal, invoice_id)
    if invoice.deleted_at is not None:
        raise _not_found(invoice_id)
    return invoice


def _not_found(invoice_id: uuid.UUID) -> errors.DomainError:
    return errors.not_found("invoice", ids.encode_id(ids.PREFIXES["invoice"], invoice_id))


def _column_value(name: str, value: Any) -> Any:
    if name == "attachments":
        return repository.attachments_json(value)
    return list(value) if name == "tags" else value
