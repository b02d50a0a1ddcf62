"""Translate between protobuf messages and provenance rows (the edge only)."""

from __future__ import annotations

from invoicing.v1 import provenance_pb2 as pb

from service.edge import pbconv
from service.kit import errors
from service.provenance import service

DIRECTIONS = {
    pb.PROVENANCE_DIRECTION_INPUT: service.INPUT,
    pb.PROVENANCE_DIRECTION_OUTPUT: service.OUTPUT,
}
DIRECTION_PB = {v: k for k, v in DIRECTIONS.items()}


def provenance_draft(message: pb.InvoiceProvenance) -> service.ProvenanceDraft:
    path = "invoice_provenance"
    if message.direction not in DIRECTIONS:
        reason = "REQUIRED" if message.direction == 0 else "INVALID_ENUM"
        raise errors.invalid(f"{path}.direction", "must be INPUT or OUTPUT", reason=reason)
    return service.ProvenanceDraft(
        invoice_id=pbconv.required_id(message.invoice_id, "invoice", f"{path}.invoice_id"),
        connection_id=pbconv.required_id(
            message.connection_id, "connection", f"{path}.connection_id"
        ),
        direction=DIRECTIONS[message.direction],
    )


def provenance_to_pb(p: service.Provenance) -> pb.InvoiceProvenance:
    return pb.InvoiceProvenance(
        id=pbconv.public_id("provenance", p.id),
        invoice_id=pbconv.public_id("invoice", p.invoice_id),
        connection_id=pbconv.public_id("connection", p.connection_id),
        direction=DIRECTION_PB[p.direction],
        created_at=pbconv.ts(p.created_at),
        updated_at=pbconv.ts(p.updated_at),
        deleted_at=pbconv.ts(p.deleted_at),
    )
