"""Translate between protobuf messages and counterparties (the edge only)."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import counterparties_pb2 as pb

from service.counterparties import service
from service.counterparties.rules import normalize_siret, normalize_vat
from service.edge import pbconv
from service.kit import errors

PATHS = ("name", "siret", "vat_number", "head_office")
READ_ONLY = ("id", "tenant_id", "siren", "created_at", "updated_at", "deleted_at", "etag")


def _name(value: str, path: str) -> str:
    name = pbconv.text(value.strip(), path, max_length=200)
    if not name:
        raise errors.invalid(path, "is required", reason="REQUIRED")
    return name


def counterparty_draft(message: pb.Counterparty) -> service.CounterpartyDraft:
    path = "counterparty"
    siret = normalize_siret(
        pbconv.text(message.siret, f"{path}.siret", max_length=64), f"{path}.siret"
    )
    vat = normalize_vat(
        pbconv.text(message.vat_number, f"{path}.vat_number", max_length=64),
        siret[:9] if siret else None,
        f"{path}.vat_number",
    )
    return service.CounterpartyDraft(
        name=_name(message.name, f"{path}.name"),
        siret=siret,
        vat_number=vat,
        head_office=message.head_office,
    )


def changes(message: pb.Counterparty, paths: list[str]) -> dict[str, Any]:
    """The values the mask names (without a mask: every populated field). A VAT number is
    checked against the SIRET given with it here; the service checks the pair it leaves
    stored (the new value of either beside the other's stored one)."""
    chosen = _paths(message, paths)
    path = "counterparty"
    out: dict[str, Any] = {}
    if "name" in chosen:
        out["name"] = _name(message.name, f"{path}.name")
    if "siret" in chosen:
        out["siret"] = normalize_siret(
            pbconv.text(message.siret, f"{path}.siret", max_length=64), f"{path}.siret"
        )
    if "vat_number" in chosen:
        siret = out.get("siret")
        out["vat_number"] = normalize_vat(
            pbconv.text(message.vat_number, f"{path}.vat_number", max_length=64),
            siret[:9] if siret else None,
            f"{path}.vat_number",
        )
    if "head_office" in chosen:
        out["head_office"] = message.head_office
    return out


def _paths(message: pb.Counterparty, paths: list[str]) -> set[str]:
    def present() -> set[str]:
        populated = {p for p in PATHS if p != "head_office" and getattr(message, p) != ""}
        return populated | ({"head_office"} if message.head_office else set())

    return pbconv.mask_paths(paths, PATHS, READ_ONLY, present)


def counterparty_to_pb(c: service.Counterparty) -> pb.Counterparty:
    return pb.Counterparty(
        id=str(c.id),
        tenant_id=str(c.tenant_id),
        name=c.name,
        siret=c.siret or "",
        siren=c.siren or "",
        vat_number=c.vat_number or "",
        head_office=c.head_office,
        created_at=pbconv.ts(c.created_at),
        updated_at=pbconv.ts(c.updated_at),
        deleted_at=pbconv.ts(c.deleted_at),
        etag=c.etag,
    )
