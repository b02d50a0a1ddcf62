"""Invoice persistence (SQLAlchemy Core). Authorization is a WHERE clause here,
backed by row-level security in the database."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from service import db, errors
from service.auth import Principal
from service.invoices import rules
from service.invoices.models import invoice_number_counters, invoices, project_sequence_counters
from service.money import format_decimal, format_money

c = invoices.c


def readable(principal: Principal) -> ColumnElement[bool]:
    """What the principal may read: its tenant, and its app's rows for app tokens."""
    clause = c.tenant_id == principal.tenant_id
    if principal.app_id is not None:
        clause = and_(clause, c.app_id == principal.app_id)
    return clause


async def get(
    conn: AsyncConnection, principal: Principal, invoice_id: uuid.UUID, *, for_update: bool = False
) -> rules.Invoice | None:
    stmt: Select[Any] = select(invoices).where(readable(principal), c.id == invoice_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await conn.execute(stmt)).first()
    return None if row is None else from_row(row)


async def insert(conn: AsyncConnection, values: Mapping[str, Any]) -> rules.Invoice:
    stmt = invoices.insert().values(**values).returning(*invoices.c)
    return from_row((await _write(conn, stmt)).one())


async def update(
    conn: AsyncConnection, principal: Principal, invoice_id: uuid.UUID, values: Mapping[str, Any]
) -> rules.Invoice:
    stmt = (
        invoices.update()
        .where(readable(principal), c.id == invoice_id)
        .values(
            **values, version=c.version + 1, updated_at=func.now(), updated_by=principal.subject
        )
        .returning(*invoices.c)
    )
    return from_row((await _write(conn, stmt)).one())


async def list_page(
    conn: AsyncConnection,
    principal: Principal,
    *,
    where: Sequence[ColumnElement[bool]],
    order: Sequence[ColumnElement[Any]],
    limit: int,
) -> list[rules.Invoice]:
    stmt = select(invoices).where(readable(principal), *where).order_by(*order).limit(limit)
    return [from_row(row) for row in await conn.execute(stmt)]


async def count(
    conn: AsyncConnection, principal: Principal, *, where: Sequence[ColumnElement[bool]]
) -> int:
    stmt = select(func.count()).select_from(invoices).where(readable(principal), *where)
    return int((await conn.execute(stmt)).scalar_one())


async def next_number(conn: AsyncConnection, tenant_id: uuid.UUID, year: int) -> int:
    """Gapless: the counter row is locked until this transaction ends."""
    t = invoice_number_counters
    insert = pg_insert(t).values(tenant_id=tenant_id, year=year, last_value=1)
    stmt = insert.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.year], set_={"last_value": t.c.last_value + 1}
    ).returning(t.c.last_value)
    return int((await conn.execute(stmt)).scalar_one())


async def next_project_sequence(
    conn: AsyncConnection, tenant_id: uuid.UUID, project_id: uuid.UUID, invoice_type: str
) -> int:
    t = project_sequence_counters
    insert = pg_insert(t).values(
        tenant_id=tenant_id, project_id=project_id, type=invoice_type, last_value=1
    )
    stmt = insert.on_conflict_do_update(
        index_elements=[t.c.tenant_id, t.c.project_id, t.c.type],
        set_={"last_value": t.c.last_value + 1},
    ).returning(t.c.last_value)
    return int((await conn.execute(stmt)).scalar_one())


async def _write(conn: AsyncConnection, stmt: Any) -> Any:
    try:
        return await conn.execute(stmt)
    except IntegrityError as exc:
        raise _integrity_error(exc) from exc


def _integrity_error(exc: IntegrityError) -> Exception:
    name = db.constraint_name(exc)
    if name == "uq_invoices_supplier_number":
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
    }


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


def from_row(row: Row[Any]) -> rules.Invoice:
    m = row._mapping
    lines = tuple(_line_from_json(item) for item in m["line_items"])
    draft = rules.Draft(
        type=m["type"],
        direction=m["direction"],
        currency=m["currency"],
        number=m["number"],
        counterparty_id=m["counterparty_id"],
        issue_date=m["issue_date"],
        due_date=m["due_date"],
        line_items=tuple(line.input for line in lines),
        notes=m["notes"],
        project_id=m["project_id"],
        contract_id=m["contract_id"],
        po_id=m["po_id"],
        order_id=m["order_id"],
        document_ref=m["document_ref"],
        tags=tuple(m["tags"]),
        source=m["source"],
        source_type=m["source_type"],
    )
    return rules.Invoice(
        id=m["id"],
        tenant_id=m["tenant_id"],
        app_id=m["app_id"],
        draft=draft,
        status=m["status"],
        subtotal=m["subtotal"],
        tax_amount=m["tax_amount"],
        discount_amount=m["discount_amount"],
        total=m["total"],
        lines=lines,
        breakdown=tuple(_tax_from_json(item) for item in m["tax_breakdown"]),
        amount_paid=m["amount_paid"],
        payment_status=m["payment_status"],
        paid_at=m["paid_at"],
        project_sequence_id=m["project_sequence_id"],
        schema_version=m["schema_version"],
        version=m["version"],
        issued_at=m["issued_at"],
        voided_at=m["voided_at"],
        void_reason=m["void_reason"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        created_by=m["created_by"],
        updated_by=m["updated_by"],
        deleted_at=m["deleted_at"],
        deleted_by=m["deleted_by"],
    )
