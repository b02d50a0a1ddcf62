"""Invoice persistence. Statements are built with SQLAlchemy Core and run on asyncpg
(service.kit.sql). Authorization is a WHERE clause here, backed by row-level security."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import Boolean, ColumnElement, Select, and_, case, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.invoices import rules
from service.invoices.models import (
    invoice_deliveries,
    invoice_number_counters,
    invoices,
    project_sequence_counters,
)
from service.kit import db, errors, sql
from service.kit.auth import Principal
from service.kit.money import format_decimal, format_money

c = invoices.c


def readable(principal: Principal) -> ColumnElement[bool]:
    """What the principal may read: its tenant, and its app's rows for app tokens."""
    clause = c.tenant_id == principal.tenant_id
    if principal.app_id is not None:
        clause = and_(clause, c.app_id == principal.app_id)
    return clause


def _locking_get(*, app_scoped: bool) -> Select[Any]:
    stmt = select(invoices).where(c.tenant_id == sql.param("tenant"), c.id == sql.param("id"))
    if app_scoped:
        stmt = stmt.where(c.app_id == sql.param("app"))
    return stmt.with_for_update()


def _prepared_get(app_scoped: bool) -> sql.Prepared:
    return sql.Prepared(lambda: _locking_get(app_scoped=app_scoped))


_GET = {app: _prepared_get(app) for app in (False, True)}


# One round trip, no transaction needed: the function sets the tenant itself
# (migration 0002); row-level security applies as for any app-role query.
_GET_ONE = "SELECT * FROM invoice_get($1, $2, $3)"


async def get(
    conn: db.Conn, principal: Principal, invoice_id: uuid.UUID, *, for_update: bool = False
) -> rules.Invoice | None:
    """One invoice the principal may read. Without `for_update` it also works on a
    connection outside any transaction (see `db.single_statement`)."""
    if not for_update:
        row = await conn.fetchrow(_GET_ONE, principal.tenant_id, invoice_id, principal.app_id)
        return None if row is None else from_row(row)
    params: dict[str, Any] = {"tenant": principal.tenant_id, "id": invoice_id}
    if principal.app_id is not None:
        params["app"] = principal.app_id
    row = await sql.fetchrow(conn, _GET[principal.app_id is not None], params)
    return None if row is None else from_row(row)


async def insert(conn: db.Conn, values: Mapping[str, Any]) -> rules.Invoice:
    stmt = invoices.insert().values(**values).returning(*invoices.c)
    return from_row(await _write(conn, stmt))


async def update(
    conn: db.Conn, principal: Principal, invoice_id: uuid.UUID, values: Mapping[str, Any]
) -> rules.Invoice:
    stmt = (
        invoices.update()
        .where(readable(principal), c.id == invoice_id)
        .values(
            **values, version=c.version + 1, updated_at=func.now(), updated_by=principal.subject
        )
        .returning(*invoices.c)
    )
    return from_row(await _write(conn, stmt))


def _build_record_payment(app_scoped: bool) -> Any:
    where = [c.tenant_id == sql.param("tenant"), c.id == sql.param("id")]
    if app_scoped:
        where.append(c.app_id == sql.param("app"))
    paid_at = case(
        (sql.param("paid_now", Boolean()), func.now()),
        else_=sql.param("paid_at", c.paid_at.type),
    )
    return (
        invoices.update()
        .where(*where)
        .values(
            amount_paid=sql.param("amount_paid", c.amount_paid.type),
            payment_status=sql.param("payment_status"),
            paid_at=paid_at,
            version=c.version + 1,
            updated_at=func.now(),
            updated_by=sql.param("by"),
        )
        .returning(*invoices.c)
    )


_RECORD_PAYMENT = {
    False: sql.Prepared(lambda: _build_record_payment(False)),
    True: sql.Prepared(lambda: _build_record_payment(True)),
}


async def record_payment(
    conn: db.Conn,
    principal: Principal,
    invoice_id: uuid.UUID,
    *,
    amount_paid: Decimal,
    payment_status: str,
    paid_at: datetime | None,
    paid_now: bool,
) -> rules.Invoice:
    """Set the payment fields of a locked invoice (one statement compiled once: this is
    on every allocation's path)."""
    params: dict[str, Any] = {
        "tenant": principal.tenant_id,
        "id": invoice_id,
        "amount_paid": amount_paid,
        "payment_status": payment_status,
        "paid_now": paid_now,
        "paid_at": paid_at,
        "by": principal.subject,
    }
    if principal.app_id is not None:
        params["app"] = principal.app_id
    row = await sql.fetchrow(conn, _RECORD_PAYMENT[principal.app_id is not None], params)
    if row is None:  # pragma: no cover - callers lock the row first
        raise errors.aborted("the invoice changed concurrently; retry", "CONCURRENT_UPDATE")
    return from_row(row)


async def next_number(conn: db.Conn, tenant_id: uuid.UUID, year: int) -> int:
    """Gapless: the counter row is locked until this transaction ends."""
    t = invoice_number_counters
    insert = pg_insert(t).values(tenant_id=tenant_id, year=year, last_value=1)
    stmt = insert.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.year], set_={"last_value": t.c.last_value + 1}
    ).returning(t.c.last_value)
    return int(await sql.fetchval(conn, stmt))


async def next_project_sequence(
    conn: db.Conn, tenant_id: uuid.UUID, project_id: uuid.UUID, invoice_type: str
) -> int:
    t = project_sequence_counters
    insert = pg_insert(t).values(
        tenant_id=tenant_id, project_id=project_id, type=invoice_type, last_value=1
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.project_id, t.c.type],
        set_={"last_value": t.c.last_value + 1},
    ).returning(t.c.last_value)
    return int(await sql.fetchval(conn, stmt))


async def _write(conn: db.Conn, stmt: Any) -> asyncpg.Record:
    try:
        row = await sql.fetchrow(conn, stmt)
    except asyncpg.UniqueViolationError as exc:
        raise _unique_error(exc) from exc
    if row is None:  # pragma: no cover - callers lock the row first
        raise errors.aborted("the invoice changed concurrently; retry", "CONCURRENT_UPDATE")
    return row


def _unique_error(exc: Exception) -> Exception:
    if db.constraint_name(exc) == "uq_invoices_supplier_number":
        return errors.already_exists(
            "this counterparty already has a supplier invoice with this number",
            "SUPPLIER_NUMBER_TAKEN",
        )
    return exc


# ---- row <-> domain ---------------------------------------------------------------


def draft_values(draft: rules.Draft, totals: rules.Totals) -> dict[str, Any]:
    """Column values for a draft and its computed totals."""
    currency = draft.currency
    return {
        "type": draft.type,
        "direction": draft.direction,
        "number": draft.number or None,
        "counterparty_id": draft.counterparty_id,
        "issue_date": draft.issue_date,
        "due_date": draft.due_date,
        "currency": currency,
        "subtotal": totals.subtotal,
        "tax_amount": totals.tax_amount,
        "discount_amount": totals.discount_amount,
        "total": totals.total,
        "line_items": [_line_json(line, currency) for line in totals.lines],
        "tax_breakdown": [_tax_json(row, currency) for row in totals.breakdown],
        "notes": draft.notes,
        "project_id": draft.project_id,
        "contract_id": draft.contract_id,
        "po_id": draft.po_id,
        "order_id": draft.order_id,
        "document_ref": draft.document_ref,
        "tags": list(draft.tags),
        "source": draft.source,
        "source_type": draft.source_type,
        "job_id": draft.job_id,
        "flex_transaction_id": draft.flex_transaction_id,
        "attachments": attachments_json(draft.attachments),
    }


def attachments_json(attachments: Sequence[rules.Attachment]) -> list[dict[str, Any]]:
    return [
        {"name": a.name, "content_type": a.content_type, "size_bytes": a.size_bytes, "url": a.url}
        for a in attachments
    ]


def _attachments(raw: Any) -> tuple[rules.Attachment, ...]:
    items = json.loads(raw) if isinstance(raw, str) else (raw or [])
    return tuple(
        rules.Attachment(
            name=item["name"],
            content_type=item.get("content_type", ""),
            size_bytes=item.get("size_bytes"),
            url=item["url"],
        )
        for item in items
    )


def _line_json(line: rules.Line, currency: str) -> dict[str, str]:
    item = line.input
    return {
        "description": item.description,
        "quantity": format_decimal(item.quantity),
        "unit_price": format_decimal(item.unit_price),
        "tax_rate": format_decimal(item.tax_rate),
        "discount_amount": format_money(item.discount_amount, currency),
        "subtotal": format_money(line.subtotal, currency),
        "amount": format_money(line.amount, currency),
        "tax_amount": format_money(line.tax_amount, currency),
    }


def _tax_json(row: rules.TaxRow, currency: str) -> dict[str, str]:
    return {
        "tax_rate": format_decimal(row.tax_rate),
        "taxable_amount": format_money(row.taxable_amount, currency),
        "tax_amount": format_money(row.tax_amount, currency),
    }


def _line_from_json(item: Mapping[str, str]) -> rules.Line:
    return rules.Line(
        input=rules.LineInput(
            description=item["description"],
            quantity=Decimal(item["quantity"]),
            unit_price=Decimal(item["unit_price"]),
            tax_rate=Decimal(item["tax_rate"]),
            discount_amount=Decimal(item["discount_amount"]),
        ),
        subtotal=Decimal(item["subtotal"]),
        amount=Decimal(item["amount"]),
        tax_amount=Decimal(item["tax_amount"]),
    )


def _tax_from_json(item: Mapping[str, str]) -> rules.TaxRow:
    return rules.TaxRow(
        tax_rate=Decimal(item["tax_rate"]),
        taxable_amount=Decimal(item["taxable_amount"]),
        tax_amount=Decimal(item["tax_amount"]),
    )


class _Lazy(Sequence[Any]):
    """Decodes stored JSON items on first access: reads that only encode never pay."""

    __slots__ = ("_decode", "_items", "_raw")

    def __init__(self, raw: Sequence[Mapping[str, str]], decode: Any) -> None:
        self._raw = raw
        self._decode = decode
        self._items: tuple[Any, ...] | None = None

    def _all(self) -> tuple[Any, ...]:
        if self._items is None:
            self._items = tuple(self._decode(item) for item in self._raw)
        return self._items

    def __getitem__(self, index: Any) -> Any:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._raw)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(self._all())


def _ingestion(row: Mapping[str, Any]) -> rules.Ingestion:
    totals = row["external_totals"]
    return rules.Ingestion(
        provider=row["external_provider"],
        external_id=row["external_id"],
        updated_at=row["external_updated_at"],
        totals=json.loads(totals) if isinstance(totals, str) else (totals or {}),
        supplier_name=row["supplier_name"] or "",
        supplier_siret=row["supplier_siret"] or "",
        supplier_siren=row["supplier_siren"] or "",
        match_status=row["match_status"],
        match_reason=row["match_reason"] or "",
        review_reason=row["review_reason"],
    )


def ingestion_values(
    doc: rules.IncomingDocument,
    supplier: rules.SupplierOutcome,
    review: str | None,
) -> dict[str, Any]:
    return {
        "external_provider": doc.provider,
        "external_id": doc.external_id,
        "external_updated_at": doc.updated_at,
        "external_totals": dict(doc.totals_text),
        "supplier_name": doc.supplier_name,
        "supplier_siret": doc.supplier_siret,
        "supplier_siren": supplier.siren or None,
        "match_status": supplier.status,
        "match_reason": supplier.reason,
        "review_reason": review,
    }


def _build_by_external() -> Any:
    c = invoices.c
    return (
        select(invoices)
        .where(
            c.tenant_id == sql.param("tenant"),
            c.external_provider == sql.param("provider"),
            c.external_id == sql.param("external_id"),
        )
        .with_for_update()
    )


_BY_EXTERNAL = sql.Prepared(_build_by_external)
_APPLIED = sql.Prepared(
    lambda: select(invoices.c.external_updated_at).where(
        invoices.c.tenant_id == sql.param("tenant"),
        invoices.c.external_provider == sql.param("provider"),
        invoices.c.external_id == sql.param("external_id"),
    )
)


async def external_updated_at(
    conn: db.Conn, tenant_id: uuid.UUID, provider: str, external_id: str
) -> datetime | None:
    params = {"tenant": tenant_id, "provider": provider, "external_id": external_id}
    row = await sql.fetchrow(conn, _APPLIED, params)
    return None if row is None else row["external_updated_at"]


async def lock_external(
    conn: db.Conn, tenant_id: uuid.UUID, provider: str, external_id: str
) -> rules.Invoice | None:
    """The invoice ingested from this document, row-locked (deleted or not)."""
    params = {"tenant": tenant_id, "provider": provider, "external_id": external_id}
    row = await sql.fetchrow(conn, _BY_EXTERNAL, params)
    return None if row is None else from_row(row)


def _build_number_taken() -> Any:
    c = invoices.c
    return select(c.id).where(
        c.tenant_id == sql.param("tenant"),
        c.type == "supplier",
        c.counterparty_id == sql.param("counterparty"),
        c.number == sql.param("number"),
        c.deleted_at.is_(None),
        c.id != sql.param("id"),
    )


_NUMBER_TAKEN = sql.Prepared(_build_number_taken)


async def supplier_number_taken(
    conn: db.Conn,
    tenant_id: uuid.UUID,
    counterparty_id: uuid.UUID,
    number: str,
    invoice_id: uuid.UUID,
) -> uuid.UUID | None:
    params = {
        "tenant": tenant_id,
        "counterparty": counterparty_id,
        "number": number,
        "id": invoice_id,
    }
    row = await sql.fetchrow(conn, _NUMBER_TAKEN, params)
    return None if row is None else row["id"]


def _build_unmatched() -> Any:
    c = invoices.c
    return (
        select(invoices)
        .where(
            c.tenant_id == sql.param("tenant"),
            c.supplier_siren == sql.param("siren"),
            c.match_status.in_(("unmatched", "ambiguous")),
        )
        .order_by(c.id)
        .limit(1000)
        .with_for_update()
    )


_UNMATCHED = sql.Prepared(_build_unmatched)


async def unmatched_by_siren(
    conn: db.Conn, principal: Principal, siren: str
) -> list[rules.Invoice]:
    rows = await sql.fetch(conn, _UNMATCHED, {"tenant": principal.tenant_id, "siren": siren})
    return [from_row(row) for row in rows]


def from_row(row: Mapping[str, Any]) -> rules.Invoice:
    raw_lines = json.loads(row["line_items"])
    raw_breakdown = json.loads(row["tax_breakdown"])
    lines = _Lazy(raw_lines, _line_from_json)
    draft = rules.Draft(
        type=row["type"],
        direction=row["direction"],
        currency=row["currency"],
        number=row["number"],
        counterparty_id=row["counterparty_id"],
        issue_date=row["issue_date"],
        due_date=row["due_date"],
        line_items=_Lazy(raw_lines, lambda item: _line_from_json(item).input),
        notes=row["notes"],
        project_id=row["project_id"],
        contract_id=row["contract_id"],
        po_id=row["po_id"],
        order_id=row["order_id"],
        document_ref=row["document_ref"],
        tags=tuple(row["tags"]),
        source=row["source"],
        source_type=row["source_type"],
        job_id=row["job_id"],
        flex_transaction_id=row["flex_transaction_id"],
        attachments=_attachments(row["attachments"]),
    )
    return rules.Invoice(
        id=row["id"],
        tenant_id=row["tenant_id"],
        app_id=row["app_id"],
        draft=draft,
        status=row["status"],
        subtotal=row["subtotal"],
        tax_amount=row["tax_amount"],
        discount_amount=row["discount_amount"],
        total=row["total"],
        lines=lines,
        breakdown=_Lazy(raw_breakdown, _tax_from_json),
        amount_paid=row["amount_paid"],
        payment_status=row["payment_status"],
        paid_at=row["paid_at"],
        project_sequence_id=row["project_sequence_id"],
        schema_version=row["schema_version"],
        version=row["version"],
        issued_at=row["issued_at"],
        voided_at=row["voided_at"],
        void_reason=row["void_reason"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        created_by=row["created_by"],
        updated_by=row["updated_by"],
        deleted_at=row["deleted_at"],
        deleted_by=row["deleted_by"],
        stored_lines=raw_lines,
        stored_breakdown=raw_breakdown,
        ingestion=_ingestion(row) if row["external_id"] is not None else None,
        parent_id=row["parent_id"],
        is_parent=row["is_parent"],
    )


# ---- deliveries ----------------------------------------------------------------------------

_d = invoice_deliveries.c
_DELIVERY_COLUMNS = (
    _d.id,
    _d.status,
    _d.attempts,
    (_d.next_attempt_at - func.now()).label("wait"),
)


def _build_ensure_delivery() -> Any:
    return (
        pg_insert(invoice_deliveries)
        .values(
            tenant_id=sql.param("tenant"),
            id=sql.param("id"),
            invoice_id=sql.param("invoice"),
            connection_id=sql.param("connection"),
        )
        .on_conflict_do_nothing(index_elements=[_d.tenant_id, _d.invoice_id, _d.connection_id])
    )


def _build_lock_delivery() -> Any:
    return (
        select(*_DELIVERY_COLUMNS)
        .where(
            _d.tenant_id == sql.param("tenant"),
            _d.invoice_id == sql.param("invoice"),
            _d.connection_id == sql.param("connection"),
        )
        .with_for_update()
    )


_ENSURE_DELIVERY = sql.Prepared(_build_ensure_delivery)
_LOCK_DELIVERY = sql.Prepared(_build_lock_delivery)


async def delivery_for(
    conn: db.Conn, principal: Principal, invoice_id: uuid.UUID, connection_id: uuid.UUID
) -> asyncpg.Record:
    """The (invoice, connection) delivery, created if new, row-locked."""
    key = {"tenant": principal.tenant_id, "invoice": invoice_id, "connection": connection_id}
    await sql.execute(conn, _ENSURE_DELIVERY, {**key, "id": uuid.uuid4()})
    row = await sql.fetchrow(conn, _LOCK_DELIVERY, key)
    assert row is not None
    return row


async def delivery_done(
    conn: db.Conn, principal: Principal, delivery_id: uuid.UUID, attempts: int, code: int
) -> None:
    await sql.execute(
        conn,
        invoice_deliveries.update()
        .where(_d.tenant_id == principal.tenant_id, _d.id == delivery_id)
        .values(
            status="delivered",
            attempts=attempts,
            last_status_code=code,
            last_error=None,
            next_attempt_at=None,
            delivered_at=func.now(),
        ),
    )


async def delivery_failed(
    conn: db.Conn,
    principal: Principal,
    delivery_id: uuid.UUID,
    attempts: int,
    code: int,
    error: str,
    retry: Any,
) -> None:
    await sql.execute(
        conn,
        invoice_deliveries.update()
        .where(_d.tenant_id == principal.tenant_id, _d.id == delivery_id)
        .values(
            status="pending" if retry is not None else "failed",
            attempts=attempts,
            last_status_code=code or None,
            last_error=error[:500],
            next_attempt_at=None if retry is None else func.now() + retry,
        ),
    )


async def deliveries_of(
    conn: db.Conn, principal: Principal, invoice_id: uuid.UUID
) -> list[Mapping[str, Any]]:
    rows = await sql.fetch(
        conn,
        select(invoice_deliveries)
        .where(_d.tenant_id == principal.tenant_id, _d.invoice_id == invoice_id)
        .order_by(_d.created_at, _d.id),
    )
    return [dict(row) for row in rows]


# ---- aggregation -----------------------------------------------------------------------------


async def children_of(
    conn: db.Conn, principal: Principal, parent_id: uuid.UUID, *, lock: bool = False
) -> list[rules.Invoice]:
    c = invoices.c
    stmt = (
        select(invoices)
        .where(readable(principal), c.parent_id == parent_id)
        .order_by(c.created_at, c.id)
    )
    rows = await sql.fetch(conn, stmt.with_for_update() if lock else stmt)
    return [from_row(row) for row in rows]


async def children_follow(conn: db.Conn, principal: Principal, parent: rules.Invoice) -> None:
    """The children take their parent's payment status and paid_at (their own amount paid
    stays 0: the payment is the parent's)."""
    c = invoices.c
    await sql.execute(
        conn,
        invoices.update()
        .where(c.tenant_id == principal.tenant_id, c.parent_id == parent.id)
        .values(
            payment_status=parent.payment_status,
            paid_at=parent.paid_at,
            version=c.version + 1,
            updated_at=func.now(),
            updated_by=principal.subject,
        ),
    )
