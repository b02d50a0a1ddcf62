"""Workspace settings values. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from service.kit.etags import etag_of

DEFAULT_ACCOUNTING_CURRENCY = "EUR"


@dataclass(frozen=True)
class Settings:
    """A workspace's settings; a workspace never configured has the defaults."""

    workspace_id: uuid.UUID
    name: str = ""
    accounting_currency: str = DEFAULT_ACCOUNTING_CURRENCY
    company_id: uuid.UUID | None = None
    version: int = 0
    updated_at: datetime | None = None
    updated_by: str = ""

    @property
    def etag(self) -> str:
        return etag_of(self.version)
