"""The counterparties table: the tenant's contractors, with their SIRET and SIREN."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    PrimaryKeyConstraint,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import UUID

from service.kit.db import audited, metadata

counterparties = Table(
    "counterparties",
    metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("id", UUID(as_uuid=True), nullable=False),
    Column("name", Text, nullable=False),
    Column("siret", Text),
    Column("siren", Text),
    Column("vat_number", Text),
    Column("head_office", Boolean, nullable=False, server_default=text("false")),
    *audited(),
    PrimaryKeyConstraint("tenant_id", "id"),
    CheckConstraint("siret ~ '^[0-9]{14}$'", name="siret"),
    CheckConstraint("siren IS NOT DISTINCT FROM left(siret, 9)", name="siren"),
    Index(
        "uq_counterparties_tenant_id_siret",
        "tenant_id",
        "siret",
        unique=True,
        postgresql_where=text("siret IS NOT NULL AND deleted_at IS NULL"),
    ),
    Index(
        "ix_counterparties_tenant_id_siren",
        "tenant_id",
        "siren",
        postgresql_where=text("deleted_at IS NULL"),
    ),
    Index("ix_counterparties_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
)
