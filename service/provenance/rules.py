"""Provenance rules: plain values in, values or domain errors out. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

INPUT = "input"
OUTPUT = "output"
DIRECTIONS = (INPUT, OUTPUT)


@dataclass(frozen=True)
class Provenance:
    id: uuid.UUID
    tenant_id: uuid.UUID
    invoice_id: uuid.UUID
    connection_id: uuid.UUID
    direction: str
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None
    created_by: str
    deleted_by: str | None


@dataclass(frozen=True)
class ProvenanceDraft:
    invoice_id: uuid.UUID
    connection_id: uuid.UUID
    direction: str
