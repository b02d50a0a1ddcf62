"""Counterparty use cases. Each runs inside the caller's transaction and never commits.

Other resources use counterparties only through this module: `match` (ingestion's supplier
matching, seed 004) and `Identity` / `Match` / `MatchStatus`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func

from service.counterparties import repository
from service.counterparties.queries import COUNTERPARTIES
from service.counterparties.rules import (
    Counterparty,
    CounterpartyDraft,
    Identity,
    Match,
    MatchStatus,
    decide,
    usable_keys,
)
from service.invoices import service as invoices
from service.kit import db, errors, etags, ids, listing
from service.kit.auth import Principal
from service.kit.deps import Deps

LISTING = COUNTERPARTIES
__all__ = ["LISTING", "Counterparty", "CounterpartyDraft", "Identity", "Match", "MatchStatus"]


async def create_counterparty(
    conn: db.Conn, principal: Principal, *, draft: CounterpartyDraft
) -> Counterparty:
    created = await repository.insert(
        conn,
        {
            "tenant_id": principal.tenant_id,
            "id": ids.new_uuid7(),
            "name": draft.name,
            "siret": draft.siret,
            "siren": draft.siret[:9] if draft.siret else None,
            "vat_number": draft.vat_number,
            "head_office": draft.head_office,
            "created_by": principal.subject,
            "updated_by": principal.subject,
        },
    )
    if created.siren:
        await _rematch(conn, principal, created.siren)
    return created


async def get_counterparty(
    conn: db.Conn, principal: Principal, *, counterparty_id: uuid.UUID
) -> Counterparty:
    found = await repository.get(conn, principal, counterparty_id)
    if found is None:
        raise _not_found(counterparty_id)
    return found


async def list_counterparties(
    conn: db.Conn, principal: Principal, *, query: listing.Query, deps: Deps
) -> listing.Page[Counterparty]:
    page = await listing.list_page(conn, principal, COUNTERPARTIES, query, deps.cursors)
    return page.map(repository.from_row)


async def update_counterparty(
    conn: db.Conn,
    principal: Principal,
    *,
    counterparty_id: uuid.UUID,
    changes: Mapping[str, Any],
    etag: str,
) -> Counterparty:
    current = await _locked_live(conn, principal, counterparty_id)
    etags.check(current.etag, etag, "counterparty")
    values = dict(changes)
    if "siret" in values:
        values["siren"] = values["siret"][:9] if values["siret"] else None
    # The VAT number and the SIRET must name one company, whichever of them changes.
    siret = values.get("siret", current.siret)
    vat = values.get("vat_number", current.vat_number)
    if siret and vat and vat.startswith("FR") and vat[4:] != siret[:9]:
        field = "vat_number" if "vat_number" in values else "siret"
        raise errors.invalid(
            f"counterparty.{field}",
            "the French VAT number and the SIRET name different SIRENs",
            reason="VAT_SIREN_MISMATCH",
        )
    if not values:
        return current
    updated = await repository.update(conn, principal, counterparty_id, values)
    if updated.siren and (updated.siren != current.siren or "head_office" in values):
        await _rematch(conn, principal, updated.siren)
    return updated


async def delete_counterparty(
    conn: db.Conn, principal: Principal, *, counterparty_id: uuid.UUID, etag: str
) -> Counterparty:
    current = await _locked_live(conn, principal, counterparty_id)
    etags.check(current.etag, etag, "counterparty")
    values = {"deleted_at": func.now(), "deleted_by": principal.subject}
    return await repository.update(conn, principal, counterparty_id, values)


async def match(conn: db.Conn, principal: Principal, identity: Identity) -> Match:
    """The counterparty a supplier identity names (seed 004: automatic, by SIREN)."""
    siret, siren, note = usable_keys(identity)
    by_siret, by_siren = await repository.live_by(conn, principal, siret=siret, siren=siren)
    return decide(siret, siren, by_siret, by_siren, note)


async def _rematch(conn: db.Conn, principal: Principal, siren: str) -> int:
    """Ingested invoices still unmatched (or ambiguous) for this SIREN get a new decision:
    a contractor created or corrected later is found by them (seed 004)."""

    async def decide(siret: str, document_siren: str) -> invoices.SupplierOutcome:
        found = await match(conn, principal, Identity(siret=siret, siren=document_siren))
        return invoices.SupplierOutcome(
            counterparty_id=found.counterparty_id,
            status=found.status.value,
            reason=found.reason,
            siren=found.siren or "",
        )

    return await invoices.match_unmatched(conn, principal, siren=siren, decide=decide)


async def _locked_live(
    conn: db.Conn, principal: Principal, counterparty_id: uuid.UUID
) -> Counterparty:
    found = await repository.get(conn, principal, counterparty_id, for_update=True)
    if found is None or found.deleted_at is not None:
        raise _not_found(counterparty_id)
    return found


def _not_found(counterparty_id: uuid.UUID) -> errors.DomainError:
    return errors.not_found("counterparty", str(counterparty_id))
