"""Exchange rate values. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from service.kit.money import format_decimal

RATE_PLACES = 10
MAX_RATE = Decimal("1000000000000")


@dataclass(frozen=True)
class Rate:
    """`1 base_currency = rate quote_currency` on `rate_date`, from `source`."""

    id: uuid.UUID
    base_currency: str
    quote_currency: str
    rate: Decimal
    rate_date: date
    source: str
    created_at: datetime | None = None
    created_by: str = ""

    def converts(self, source: str, target: str) -> bool:
        return {self.base_currency, self.quote_currency} == {source, target}

    def describe(self) -> str:
        return (
            f"1 {self.base_currency} = {format_decimal(self.rate)} {self.quote_currency}"
            f" ({self.source}, {self.rate_date.isoformat()})"
        )


@dataclass(frozen=True)
class RateDraft:
    base_currency: str
    quote_currency: str
    rate: Decimal
    rate_date: date
    source: str
