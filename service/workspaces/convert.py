"""Translate between protobuf messages and workspace settings (the edge only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from invoicing.v1 import allocations_pb2 as pb

from service.edge import pbconv
from service.kit import ids
from service.workspaces import service

PATHS = ("accounting_currency", "name", "company_id")
READ_ONLY = ("workspace_id", "updated_at", "updated_by", "etag")


def settings_changes(
    settings: pb.WorkspaceSettings, paths: Iterable[str], has_mask: bool
) -> dict[str, Any]:
    chosen = _paths(settings, list(paths), has_mask)
    changes: dict[str, Any] = {}
    if "accounting_currency" in chosen:
        changes["accounting_currency"] = pbconv.currency(
            settings.accounting_currency, "settings.accounting_currency"
        )
    if "name" in chosen:
        changes["name"] = pbconv.text(settings.name.strip(), "settings.name", max_length=200)
    if "company_id" in chosen:
        changes["company_id"] = ids.parse_uuid(settings.company_id, "settings.company_id")
    return changes


def _paths(settings: pb.WorkspaceSettings, paths: list[str], has_mask: bool) -> set[str]:
    return pbconv.mask_paths(
        paths if has_mask else [],
        PATHS,
        READ_ONLY,
        lambda: {p for p in PATHS if getattr(settings, p) != ""},
    )


def settings_to_pb(s: service.Settings) -> pb.WorkspaceSettings:
    return pb.WorkspaceSettings(
        workspace_id=str(s.workspace_id),
        accounting_currency=s.accounting_currency,
        name=s.name,
        company_id=str(s.company_id or ""),
        updated_at=pbconv.ts(s.updated_at),
        updated_by=s.updated_by,
        etag=s.etag,
    )
