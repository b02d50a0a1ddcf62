"""Counterparty rules: SIRET, SIREN and French VAT numbers (PROVIDERS.md), and supplier
matching. Plain values in, values or domain errors out. No I/O."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from service.kit import errors
from service.kit.etags import etag_of

LA_POSTE_SIREN = "356000000"


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def siren_ok(text: str) -> bool:
    """9 digits passing the Luhn check (La Poste's SIREN passes it too)."""
    return len(text) == 9 and text.isascii() and text.isdigit() and luhn_ok(text)


def siret_ok(text: str) -> bool:
    """14 digits passing the Luhn check; La Poste's establishments (SIREN 356000000)
    instead when their digits sum to a multiple of 5."""
    if len(text) != 14 or not text.isascii() or not text.isdigit():
        return False
    if text.startswith(LA_POSTE_SIREN):
        return sum(int(c) for c in text) % 5 == 0
    return luhn_ok(text)


def french_vat_key(siren: str) -> str:
    """The 2-digit key of a French VAT number: (12 + 3 * (SIREN mod 97)) mod 97."""
    return f"{(12 + 3 * (int(siren) % 97)) % 97:02d}"


def normalize_siret(text: str, field_path: str) -> str | None:
    compact = "".join(text.split())
    if compact == "":
        return None
    if not siret_ok(compact):
        raise errors.invalid(
            field_path,
            "must be 14 digits passing the SIRET check (Luhn; La Poste: digit sum a multiple of 5)",
            reason="INVALID_SIRET",
        )
    return compact


def normalize_vat(text: str, siren: str | None, field_path: str) -> str | None:
    compact = "".join(text.split()).upper()
    if compact == "":
        return None
    if not 2 <= len(compact) <= 20 or not compact.isascii() or not compact.isalnum():
        raise errors.invalid(field_path, "must be 2..20 letters and digits", reason="INVALID_VAT")
    if compact.startswith("FR"):
        key, number = compact[2:4], compact[4:]
        if not siren_ok(number) or len(compact) != 13:
            raise errors.invalid(
                field_path,
                "a French VAT number is FR + 2-character key + SIREN",
                reason="INVALID_VAT",
            )
        if key.isdigit() and key != french_vat_key(number):
            raise errors.invalid(
                field_path, "the French VAT key does not match the SIREN", reason="INVALID_VAT"
            )
        if siren is not None and number != siren:
            raise errors.invalid(
                field_path, "names another SIREN than the SIRET's", reason="VAT_SIREN_MISMATCH"
            )
    return compact


@dataclass(frozen=True)
class Counterparty:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    siret: str | None
    siren: str | None
    vat_number: str | None
    head_office: bool
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    deleted_at: datetime | None
    deleted_by: str | None

    @property
    def etag(self) -> str:
        return etag_of(self.version)


@dataclass(frozen=True)
class CounterpartyDraft:
    name: str
    siret: str | None
    vat_number: str | None
    head_office: bool


# ---- supplier matching (seed 004, PROVIDERS.md) -------------------------------------------


class MatchStatus(enum.Enum):
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Match:
    status: MatchStatus
    counterparty_id: uuid.UUID | None
    reason: str
    siren: str | None = None  # the valid SIREN matched on (a later contractor may match it)


@dataclass(frozen=True)
class Identity:
    """What a document says about its supplier, as given (never trusted unchecked)."""

    siret: str | None
    siren: str | None


def usable_keys(identity: Identity) -> tuple[str | None, str | None, str]:
    """(siret, siren) to match on, each only if valid, and why one was dropped."""
    siret = (identity.siret or "").strip() or None
    siren = (identity.siren or "").strip() or None
    notes = []
    if siret is not None and not siret_ok(siret):
        notes.append("the document's SIRET fails its check")
        siret = None
    if siret is not None:
        siren = siret[:9]
    elif siren is not None and not siren_ok(siren):
        notes.append("the document's SIREN fails its check")
        siren = None
    return siret, siren, "; ".join(notes)


def decide(
    siret: str | None,
    siren: str | None,
    by_siret: Sequence[Counterparty],
    by_siren: Sequence[Counterparty],
    note: str,
) -> Match:
    """Exact SIRET first; else the SIREN's establishments: one → it, several → the head
    office if exactly one is marked, else ambiguous; none → unmatched."""

    def why(text: str) -> str:
        return f"{text}; {note}" if note else text

    if siret is None and siren is None:
        return Match(MatchStatus.UNMATCHED, None, why("no valid SIRET or SIREN on the document"))
    if siret is not None and len(by_siret) == 1:
        return Match(MatchStatus.MATCHED, by_siret[0].id, why("SIRET"), siren)
    if not by_siren:
        return Match(MatchStatus.UNMATCHED, None, why(f"no counterparty with SIREN {siren}"), siren)
    if len(by_siren) == 1:
        return Match(MatchStatus.MATCHED, by_siren[0].id, why("SIREN"), siren)
    heads = [c for c in by_siren if c.head_office]
    if len(heads) == 1:
        return Match(MatchStatus.MATCHED, heads[0].id, why("SIREN, head office"), siren)
    return Match(
        MatchStatus.AMBIGUOUS,
        None,
        why(
            f"{len(by_siren)} establishments with SIREN {siren} and "
            f"{'several head offices' if heads else 'no head office'}"
        ),
        siren,
    )
