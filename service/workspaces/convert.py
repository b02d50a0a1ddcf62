"""Translate between protobuf messages and workspace settings (the edge only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from invoicing.v1 import allocations_pb2 as pb

from service.edge import pbconv
from service.kit import errors
from service.workspaces import service

PATHS = ("accounting_currency", "name")
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
    return changes


def _paths(settings: pb.WorkspaceSettings, paths: list[str], has_mask: bool) -> set[str]:
    if not has_mask or not paths:
        return {p for p in PATHS if getattr(settings, p) != ""}
    if paths == ["*"]:
        return set(PATHS)
    for path in paths:
        if path not in PATHS:
            kind = "read-only" if path in READ_ONLY else "unknown"
            raise errors.invalid(
                "update_mask",
                f"{kind} path {path[:64]!r}; updatable: {', '.join(PATHS)}",
                reason="INVALID_UPDATE_MASK",
                path=path[:64],
            )
    return set(paths)


def settings_to_pb(s: service.Settings) -> pb.WorkspaceSettings:
    return pb.WorkspaceSettings(
        workspace_id=str(s.workspace_id),
        accounting_currency=s.accounting_currency,
        name=s.name,
        updated_at=pbconv.ts(s.updated_at),
        updated_by=s.updated_by,
        etag=s.etag,
    )
