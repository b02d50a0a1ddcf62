"""Provenance use cases. Each runs inside the caller's transaction and never commits.

`record` is what the pipelines call (ingestion for `input`, outbound delivery for
`output`), inside their own transaction; nothing else writes these rows. `invoice_filters`
are ListInvoices' provenance filters (EXISTS over the junction's connection index).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from sqlalchemy import ColumnElement, exists, select

from service.connections import service as connections
from service.kit import db, errors, ids, listing
from service.kit.auth import Principal
from service.kit.deps import Deps
from service.kit.filtering import FilterField, id_field
from service.provenance import repository
from service.provenance.models import invoice_provenances
from service.provenance.queries import PROVENANCES
from service.provenance.rules import INPUT, OUTPUT, Provenance, ProvenanceDraft

LISTING = PROVENANCES
__all__ = ["INPUT", "LISTING", "OUTPUT", "Provenance", "ProvenanceDraft", "invoice_filters"]
_p = invoice_provenances.c


async def create_provenance(
    conn: db.Conn, principal: Principal, *, draft: ProvenanceDraft
) -> Provenance:
    """CreateInvoiceProvenance: ALREADY_EXISTS when the live row exists. The caller has
    checked the invoice (the servicer, through the invoices' service)."""
    await _check_connection(conn, principal, draft)
    return await repository.insert(conn, _values(principal, draft))


async def record(
    conn: db.Conn,
    principal: Principal,
    *,
    invoice_id: uuid.UUID,
    connection_id: uuid.UUID,
    direction: str,
) -> Provenance:
    """Record that `connection_id` fed (input) or received (output) `invoice_id`, in the
    caller's transaction. Idempotent: the live row is returned if it exists (a redelivered
    document or a retried delivery records nothing twice). NOT_FOUND when the invoice or
    the connection is unknown, deleted or another tenant's; the invoice is the caller's
    (it holds it in this transaction), and the composite foreign key refuses one of another
    tenant or none."""
    if direction not in (INPUT, OUTPUT):
        raise ValueError(f"direction must be {INPUT!r} or {OUTPUT!r}")
    draft = ProvenanceDraft(invoice_id, connection_id, direction)
    await _check_connection(conn, principal, draft)
    return await repository.insert_if_absent(conn, _values(principal, draft))


async def get_provenance(
    conn: db.Conn, principal: Principal, *, provenance_id: uuid.UUID
) -> Provenance:
    found = await repository.get(conn, principal, provenance_id)
    if found is None:
        raise _not_found(provenance_id)
    return found


async def list_provenances(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> listing.Page[Provenance]:
    page = await listing.list_page(conn, principal, PROVENANCES, query, deps.cursors)
    return page.map(repository.from_row)


async def delete_provenance(
    conn: db.Conn, principal: Principal, *, provenance_id: uuid.UUID
) -> Provenance:
    found = await repository.get(conn, principal, provenance_id, for_update=True)
    if found is None or found.deleted_at is not None:
        raise _not_found(provenance_id)
    return await repository.soft_delete(conn, principal, provenance_id)


def invoice_filters(invoice_tenant: Any, invoice_id: Any) -> list[FilterField]:
    """ListInvoices' filters on provenance: `input_connection_id` (the connection an invoice
    came in through) and `output_connection_id` (one it was routed out through); `x = "con_…"`
    reads "has a live provenance row of that direction whose connection is con_…"."""

    def within(direction: str) -> Any:
        def wrap(condition: ColumnElement[bool]) -> ColumnElement[bool]:
            return exists(
                select(1)
                .select_from(invoice_provenances)
                .where(
                    _p.tenant_id == invoice_tenant,
                    _p.invoice_id == invoice_id,
                    _p.direction == direction,
                    _p.deleted_at.is_(None),
                    condition,
                )
            )

        return wrap

    return [
        _with(id_field("input_connection_id", _p.connection_id, "connection"), within(INPUT)),
        _with(id_field("output_connection_id", _p.connection_id, "connection"), within(OUTPUT)),
    ]


def _with(field: FilterField, within: Any) -> FilterField:
    return dataclasses.replace(field, within=within)


async def _check_connection(conn: db.Conn, principal: Principal, draft: ProvenanceDraft) -> None:
    await connections.get_live(conn, principal, connection_id=draft.connection_id)


def _values(principal: Principal, draft: ProvenanceDraft) -> dict[str, Any]:
    return {
        "tenant_id": principal.tenant_id,
        "id": ids.new_uuid7(),
        "invoice_id": draft.invoice_id,
        "connection_id": draft.connection_id,
        "direction": draft.direction,
        "created_by": principal.subject,
    }


def _not_found(provenance_id: uuid.UUID) -> errors.DomainError:
    return errors.not_found("provenance", ids.encode_id(ids.PREFIXES["provenance"], provenance_id))
