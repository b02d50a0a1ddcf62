"""Imports every table module so the shared metadata is complete (for Alembic and tests)."""

from __future__ import annotations

from sqlalchemy import MetaData


def metadata() -> MetaData:
    from service import idempotency  # noqa: F401
    from service.allocations import models as allocation_models  # noqa: F401
    from service.invoices import models  # noqa: F401
    from service.kit.db import metadata as shared

    return shared
