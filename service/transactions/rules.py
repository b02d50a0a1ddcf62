"""Transaction rules: plain values in, values or domain errors out. No I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from service.kit import errors
from service.kit.etags import etag_of
from service.kit.money import format_money, parse_money

RECEIVABLE = "receivable"
PAYABLE = "payable"
ZERO = Decimal(0)


@dataclass(frozen=True)
class Transaction:
    id: uuid.UUID
    tenant_id: uuid.UUID
    app_id: str | None
    direction: str
    amount: Decimal
    currency: str
    allocated_amount: Decimal
    value_date: date
    reference: str
    counterparty_id: uuid.UUID | None
    subscription_id: uuid.UUID | None
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    deleted_at: datetime | None
    deleted_by: str | None

    @property
    def unallocated_amount(self) -> Decimal:
        return self.amount - self.allocated_amount

    @property
    def etag(self) -> str:
        return etag_of(self.version)


@dataclass(frozen=True)
class TransactionDraft:
    direction: str
    amount: Decimal
    currency: str
    value_date: date | None
    reference: str
    counterparty_id: uuid.UUID | None
    subscription_id: uuid.UUID | None


def parse_positive(text: str, currency: str, field_path: str) -> Decimal:
    """A required amount in `currency`, > 0, exact to its minor unit."""
    value = parse_money(text, currency, field_path)
    if value <= ZERO:
        raise errors.invalid(
            field_path, "must be greater than 0", reason="OUT_OF_RANGE", minimum="0"
        )
    return value


def check_deletable(transaction: Transaction) -> None:
    if transaction.allocated_amount > ZERO:
        raise errors.failed_precondition(
            "the transaction has live allocations; reverse them first",
            "TRANSACTION_HAS_ALLOCATIONS",
            allocatedAmount=format_money(transaction.allocated_amount, transaction.currency),
        )
