"""Allocation rules: plain values in, values or domain errors out. No I/O.

Conversion model (DESIGN.md section 4): a rate states `1 base = rate quote`. Converting
base -> quote multiplies, quote -> base divides; the result is rounded half up to the
target currency's minor unit, once per conversion. The stored amounts of an allocation
therefore reconcile exactly: `invoice_amount == convert(amount, rate)` and
`accounting_amount == convert(invoice_amount, accounting rate)` (or a copy of `amount` /
`invoice_amount` when the accounting currency is one of them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_DOWN, Context, Decimal
from typing import Protocol

from service.kit import errors
from service.kit.etags import etag_of
from service.kit.money import format_money, quantum, round_half_up

RECEIVABLE = "receivable"
PAYABLE = "payable"
FULL = "full"
PARTIAL = "partial"
ZERO = Decimal(0)
# Every stored amount stays below this, like the invoices' totals (NUMERIC(24, 4) fits 1e20).
MAX_STORED = Decimal(10) ** 18
# A transaction's amount has at most 15 integer digits, as any amount a client sends.
MAX_TRANSACTION = Decimal(10) ** 15
_DIVISION = Context(prec=60)


class RateLike(Protocol):
    """What the conversion model needs of an exchange rate: `1 base = rate quote`."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def base_currency(self) -> str: ...
    @property
    def quote_currency(self) -> str: ...
    @property
    def rate(self) -> Decimal: ...

    def converts(self, source: str, target: str) -> bool: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class Allocation:
    id: uuid.UUID
    tenant_id: uuid.UUID
    app_id: str | None
    invoice_id: uuid.UUID
    transaction_id: uuid.UUID
    exchange_rate_id: uuid.UUID | None
    accounting_exchange_rate_id: uuid.UUID | None
    subscription_id: uuid.UUID | None
    amount: Decimal
    currency: str
    invoice_amount: Decimal
    invoice_currency: str
    accounting_amount: Decimal
    accounting_currency: str
    allocation_type: str
    composite_fx_rate: str | None
    composite_invoice_transaction_summary: str
    version: int
    created_at: datetime
    updated_at: datetime
    created_by: str
    updated_by: str
    deleted_at: datetime | None
    deleted_by: str | None

    @property
    def etag(self) -> str:
        return etag_of(self.version)


@dataclass(frozen=True)
class Payee:
    """What an allocation needs to know about its invoice (a locked row)."""

    id: uuid.UUID
    status: str
    direction: str
    currency: str
    total: Decimal
    amount_paid: Decimal

    @property
    def amount_due(self) -> Decimal:
        return self.total - self.amount_paid


@dataclass(frozen=True)
class Payer:
    """What an allocation needs to know about its transaction (a locked row)."""

    id: uuid.UUID
    direction: str
    currency: str
    amount: Decimal
    allocated_amount: Decimal
    value_date: date

    @property
    def unallocated_amount(self) -> Decimal:
        return self.amount - self.allocated_amount


@dataclass(frozen=True)
class AllocationRequest:
    """A CreateAllocation as decoded at the edge; `amount` is parsed in the use case, in
    the transaction's currency."""

    invoice_id: uuid.UUID
    transaction_id: uuid.UUID
    amount: str
    currency: str | None = None
    exchange_rate_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Amounts:
    """The reconciled amounts of one allocation."""

    amount: Decimal
    currency: str
    invoice_amount: Decimal
    invoice_currency: str
    accounting_amount: Decimal
    accounting_currency: str


@dataclass(frozen=True)
class NewAllocation:
    """An allocation about to be written: what it links and its reconciled amounts."""

    invoice_id: uuid.UUID
    transaction_id: uuid.UUID
    amounts: Amounts
    allocation_type: str
    exchange_rate_id: uuid.UUID | None
    accounting_exchange_rate_id: uuid.UUID | None
    subscription_id: uuid.UUID | None
    composite_fx_rate: str | None
    composite_invoice_transaction_summary: str


def new_allocation(
    *,
    payee_after: Payee,
    payer: Payer,
    amounts: Amounts,
    rate: RateLike | None,
    accounting_rate: RateLike | None,
    subscription_id: uuid.UUID | None,
    labels: tuple[str, str],
) -> NewAllocation:
    """The allocation of `amounts` from `payer` to the invoice, which is `payee_after`
    once paid; `labels` name the invoice and the transaction in its summary."""
    kind = allocation_type(payee_after)
    return NewAllocation(
        invoice_id=payee_after.id,
        transaction_id=payer.id,
        amounts=amounts,
        allocation_type=kind,
        exchange_rate_id=None if rate is None else rate.id,
        accounting_exchange_rate_id=None if accounting_rate is None else accounting_rate.id,
        subscription_id=subscription_id,
        composite_fx_rate=composite_fx_rate(rate, accounting_rate),
        composite_invoice_transaction_summary=summary(
            labels[0], labels[1], amounts.amount, amounts.currency, kind
        ),
    )


def convert(value: Decimal, rate: RateLike, source: str, target: str) -> Decimal:
    """`value` in `source` expressed in `target` with `rate`, rounded half up once."""
    if source == target:
        return value
    if (rate.base_currency, rate.quote_currency) == (source, target):
        return round_half_up(value * rate.rate, target)
    if (rate.base_currency, rate.quote_currency) == (target, source):
        return round_half_up(_DIVISION.divide(value, rate.rate), target)
    raise ValueError(f"{rate.describe()} does not convert {source} to {target}")


def amounts(
    amount: Decimal,
    currency: str,
    *,
    invoice_currency: str,
    accounting_currency: str,
    rate: RateLike | None,
    accounting_rate: RateLike | None,
) -> Amounts:
    """Convert a transaction amount into the invoice and the accounting currencies."""
    invoice_amount = amount if rate is None else convert(amount, rate, currency, invoice_currency)
    if accounting_currency == invoice_currency:
        accounting_amount = invoice_amount
    elif accounting_currency == currency:
        accounting_amount = amount
    elif accounting_rate is None:
        raise ValueError("an accounting rate is needed")
    else:
        accounting_amount = convert(
            invoice_amount, accounting_rate, invoice_currency, accounting_currency
        )
    return Amounts(
        amount, currency, invoice_amount, invoice_currency, accounting_amount, accounting_currency
    )


def accounting_pair_needs_rate(currency: str, invoice_currency: str, accounting: str) -> bool:
    return accounting not in (currency, invoice_currency)


def largest_amount_within(due: Decimal, rate: RateLike, source: str, target: str) -> Decimal:
    """The largest `source` amount whose conversion into `target` does not exceed `due`.

    Used for "pay the amount due" in a foreign currency. Conversion rounds half up, so
    x converts to at most `due` exactly when x (times or divided by the rate) is below
    `due` + half a target unit: the answer is the last source unit under that bound.
    When the source currency's unit is worth more than the target's, `due` itself may
    be unreachable; the result then converts to slightly less than `due`.
    """
    unit = quantum(source)
    bound = due + quantum(target) / 2
    if (rate.base_currency, rate.quote_currency) == (source, target):
        limit = _DIVISION.divide(bound, rate.rate)
    else:
        limit = _DIVISION.multiply(bound, rate.rate)
    candidate = limit.quantize(unit, rounding=ROUND_DOWN)
    if candidate == limit:
        candidate -= unit
    # The bound is computed to 60 digits; these steps only absorb its last-digit error.
    while convert(candidate + unit, rate, source, target) <= due:
        candidate += unit
    while candidate > ZERO and convert(candidate, rate, source, target) > due:
        candidate -= unit
    return max(candidate, ZERO)


def allocation_type(payee_after: Payee) -> str:
    return FULL if payee_after.amount_due == ZERO else PARTIAL


def check_payable(payee: Payee) -> None:
    if payee.status != "issued":
        raise errors.failed_precondition(
            f"only issued invoices accept payments; this one is {payee.status}",
            "INVOICE_NOT_PAYABLE",
            status=payee.status,
        )


def check_direction(payee: Payee, transaction: Payer) -> None:
    if payee.direction != transaction.direction:
        raise errors.failed_precondition(
            f"a {transaction.direction} transaction cannot pay a {payee.direction} invoice",
            "DIRECTION_MISMATCH",
            transactionDirection=transaction.direction,
            invoiceDirection=payee.direction,
        )


def check_unallocated(transaction: Payer, amount: Decimal) -> None:
    if amount > transaction.unallocated_amount:
        currency = transaction.currency
        raise errors.failed_precondition(
            f"{format_money(amount, currency)} {currency} exceeds the transaction's unallocated"
            f" {format_money(transaction.unallocated_amount, currency)} {currency}",
            "AMOUNT_EXCEEDS_UNALLOCATED",
            amount=format_money(amount, currency),
            unallocatedAmount=format_money(transaction.unallocated_amount, currency),
            transactionAmount=format_money(transaction.amount, currency),
            currency=currency,
        )


def check_within_due(payee: Payee, invoice_amount: Decimal) -> None:
    if invoice_amount > payee.amount_due:
        currency = payee.currency
        raise errors.failed_precondition(
            f"{format_money(invoice_amount, currency)} {currency} exceeds the invoice's amount"
            f" due {format_money(payee.amount_due, currency)} {currency}",
            "AMOUNT_EXCEEDS_AMOUNT_DUE",
            invoiceAmount=format_money(invoice_amount, currency),
            amountDue=format_money(payee.amount_due, currency),
            amountPaid=format_money(payee.amount_paid, currency),
            total=format_money(payee.total, currency),
            currency=currency,
        )


def check_storable(converted: Amounts, field_path: str) -> None:
    """Every amount an allocation stores stays below MAX_STORED (NUMERIC(24, 4) holds 20
    integer digits; invoices stay below the same bound). A payment whose conversion
    would not fit is refused naming the amount, before anything is written."""
    for label, value, currency in (
        ("amount", converted.amount, converted.currency),
        ("invoice amount", converted.invoice_amount, converted.invoice_currency),
        ("accounting amount", converted.accounting_amount, converted.accounting_currency),
    ):
        if abs(value) >= MAX_STORED:
            raise errors.invalid(
                field_path,
                f"its {label} would be {format_money(value, currency)} {currency}, beyond "
                f"what can be stored (below {MAX_STORED:f})",
                reason="AMOUNT_TOO_LARGE",
                currency=currency,
            )


def check_not_zero(invoice_amount: Decimal, field_path: str) -> None:
    if invoice_amount <= ZERO:
        raise errors.invalid(
            field_path,
            "converts to zero in the invoice currency",
            reason="AMOUNT_TOO_SMALL",
        )


def check_rate_given(rate: RateLike, source: str, target: str, field_path: str) -> None:
    if source == target:
        raise errors.invalid(
            field_path,
            "must be empty: the transaction and the invoice have the same currency",
            reason="EXCHANGE_RATE_NOT_NEEDED",
        )
    if not rate.converts(source, target):
        raise errors.invalid(
            field_path,
            f"{rate.describe()} does not convert {source} to {target}",
            reason="EXCHANGE_RATE_PAIR_MISMATCH",
        )


def no_rate(source: str, target: str, on: date) -> errors.DomainError:
    return errors.failed_precondition(
        f"no exchange rate between {source} and {target} on or before {on.isoformat()}",
        "NO_EXCHANGE_RATE",
        baseCurrency=source,
        quoteCurrency=target,
        date=on.isoformat(),
    )


def composite_fx_rate(*rates: RateLike | None) -> str | None:
    applied = [rate.describe() for rate in rates if rate is not None]
    return "; ".join(applied) or None


def summary(
    invoice_label: str, transaction_label: str, amount: Decimal, currency: str, kind: str
) -> str:
    money = f"{format_money(amount, currency)} {currency}"
    return f"{invoice_label} <- {transaction_label} {money} ({kind})"
