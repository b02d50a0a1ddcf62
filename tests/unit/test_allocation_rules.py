"""Allocation rules without a database: conversion, reconciliation, checks."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.allocations import rules
from service.exchange_rates.rules import Rate
from service.kit.errors import Code, DomainError
from service.kit.money import format_money, quantum
from service.transactions.rules import parse_positive

DAY = date(2026, 4, 28)
CURRENCIES = ("EUR", "USD", "JPY", "BHD", "KWD", "CLF")  # exponents 2, 2, 0, 3, 3, 4


def rate(base: str, quote: str, value: str, source: str = "ecb") -> Rate:
    return Rate(uuid.uuid4(), base, quote, Decimal(value), DAY, source)


def exact(value: Decimal, currency: str) -> Decimal:
    return value.quantize(quantum(currency), rounding=ROUND_HALF_UP)


amounts_st = st.integers(min_value=1, max_value=10**12)
rates_st = st.decimals(
    min_value=Decimal("0.0000000001"), max_value=Decimal("100000"), places=10
).filter(lambda d: d > 0)
pairs_st = st.tuples(st.sampled_from(CURRENCIES), st.sampled_from(CURRENCIES)).filter(
    lambda p: p[0] != p[1]
)


def money(units: int, currency: str) -> Decimal:
    return Decimal(units) * quantum(currency)


# ---- conversion ---------------------------------------------------------------------


def test_convert_direct_multiplies_and_rounds_half_up() -> None:
    usd_eur = rate("USD", "EUR", "0.92")
    assert rules.convert(Decimal("100.00"), usd_eur, "USD", "EUR") == Decimal("92.00")
    assert rules.convert(Decimal("0.05"), usd_eur, "USD", "EUR") == Decimal("0.05")  # 0.046
    half = rate("USD", "EUR", "0.5")
    assert rules.convert(Decimal("0.01"), half, "USD", "EUR") == Decimal("0.01")  # 0.005 up


def test_convert_inverse_divides() -> None:
    eur_jpy = rate("EUR", "JPY", "160")
    assert rules.convert(Decimal("16000"), eur_jpy, "JPY", "EUR") == Decimal("100.00")
    assert rules.convert(Decimal("1"), eur_jpy, "JPY", "EUR") == Decimal("0.01")  # 0.00625
    assert rules.convert(Decimal("100.00"), eur_jpy, "EUR", "JPY") == Decimal("16000")


def test_convert_to_three_decimal_currency() -> None:
    bhd_eur = rate("BHD", "EUR", "2.4390")
    assert rules.convert(Decimal("100.00"), bhd_eur, "EUR", "BHD") == Decimal("41.000")  # 41.00041


def test_convert_with_an_unrelated_rate_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="does not convert"):
        rules.convert(Decimal(1), rate("USD", "EUR", "0.9"), "GBP", "EUR")


@settings(max_examples=300, deadline=None)
@given(units=amounts_st, value=rates_st, pair=pairs_st, inverse=st.booleans())
def test_convert_is_the_exact_value_rounded_once(
    units: int, value: Decimal, pair: tuple[str, str], inverse: bool
) -> None:
    source, target = pair
    amount = money(units, source)
    r = rate(target, source, str(value)) if inverse else rate(source, target, str(value))
    got = rules.convert(amount, r, source, target)
    ideal = amount / value if inverse else amount * value
    assert got == exact(ideal, target)
    assert abs(got - ideal) <= quantum(target) / 2
    format_money(got, target)  # exact to the target's minor unit, or ValueError


# ---- reconciliation (no cent lost) --------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    units=amounts_st,
    currencies=st.tuples(*(st.sampled_from(CURRENCIES),) * 3),
    value=rates_st,
    accounting_value=rates_st,
)
def test_stored_amounts_reconcile_exactly(
    units: int, currencies: tuple[str, str, str], value: Decimal, accounting_value: Decimal
) -> None:
    currency, invoice_currency, accounting = currencies
    amount = money(units, currency)
    fx = None if currency == invoice_currency else rate(currency, invoice_currency, str(value))
    needs = rules.accounting_pair_needs_rate(currency, invoice_currency, accounting)
    acc = rate(invoice_currency, accounting, str(accounting_value)) if needs else None
    got = rules.amounts(
        amount,
        currency,
        invoice_currency=invoice_currency,
        accounting_currency=accounting,
        rate=fx,
        accounting_rate=acc,
    )
    assert got.amount == amount
    # Each stored amount is derived from a stored amount and a stored rate, once.
    expected_invoice = (
        amount if fx is None else rules.convert(amount, fx, currency, invoice_currency)
    )
    assert got.invoice_amount == expected_invoice
    if accounting == invoice_currency:
        assert got.accounting_amount == got.invoice_amount
    elif accounting == currency:
        assert got.accounting_amount == amount
    else:
        assert acc is not None
        assert got.accounting_amount == rules.convert(
            got.invoice_amount, acc, invoice_currency, accounting
        )
    for value_, code in (
        (got.amount, currency),
        (got.invoice_amount, invoice_currency),
        (got.accounting_amount, accounting),
    ):
        format_money(value_, code)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=30))
def test_same_currency_allocations_sum_to_the_transaction(parts: list[int]) -> None:
    """Split one EUR payment into allocations: the invoice amounts add up to the cent."""
    amounts = [money(p, "EUR") for p in parts]
    converted = [
        rules.amounts(
            a,
            "EUR",
            invoice_currency="EUR",
            accounting_currency="USD",
            rate=None,
            accounting_rate=rate("EUR", "USD", "1.0870"),
        )
        for a in amounts
    ]
    assert sum(c.invoice_amount for c in converted) == sum(amounts)


# ---- paying the amount due in a foreign currency ------------------------------------


@settings(max_examples=300, deadline=None)
@given(due_units=amounts_st, value=rates_st, pair=pairs_st, inverse=st.booleans())
def test_largest_amount_within_due_is_the_largest(
    due_units: int, value: Decimal, pair: tuple[str, str], inverse: bool
) -> None:
    source, target = pair
    due = money(due_units, target)
    r = rate(target, source, str(value)) if inverse else rate(source, target, str(value))
    amount = rules.largest_amount_within(due, r, source, target)
    unit = quantum(source)
    assert amount >= 0
    assert amount % unit == 0
    assert amount == 0 or rules.convert(amount, r, source, target) <= due
    assert rules.convert(amount + unit, r, source, target) > due


@settings(max_examples=300, deadline=None)
@given(due_units=amounts_st, value=rates_st)
def test_due_is_reached_exactly_when_the_source_unit_is_finer(
    due_units: int, value: Decimal
) -> None:
    """USD cents worth at most a EUR cent: the amount due is always reachable exactly."""
    r = rate("USD", "EUR", str(min(value, Decimal(1))))
    due = money(due_units, "EUR")
    amount = rules.largest_amount_within(due, r, "USD", "EUR")
    if amount > 0:
        assert rules.convert(amount, r, "USD", "EUR") == due


# ---- checks -------------------------------------------------------------------------


def payee(**overrides: object) -> rules.Payee:
    fields: dict[str, object] = {
        "id": uuid.uuid4(),
        "status": "issued",
        "direction": "receivable",
        "currency": "EUR",
        "total": Decimal("100.00"),
        "amount_paid": Decimal("40.00"),
    }
    fields.update(overrides)
    return rules.Payee(**fields)  # type: ignore[arg-type]


def failure(call: object, *args: object) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def test_amount_over_due_names_the_amounts() -> None:
    err = failure(rules.check_within_due, payee(), Decimal("60.01"))
    assert err.code is Code.FAILED_PRECONDITION
    assert err.reason == "AMOUNT_EXCEEDS_AMOUNT_DUE"
    assert err.metadata == {
        "invoiceAmount": "60.01",
        "amountDue": "60.00",
        "amountPaid": "40.00",
        "total": "100.00",
        "currency": "EUR",
    }
    rules.check_within_due(payee(), Decimal("60.00"))


@pytest.mark.parametrize("status", ["draft", "void"])
def test_only_issued_invoices_are_payable(status: str) -> None:
    err = failure(rules.check_payable, payee(status=status))
    assert (err.code, err.reason, err.metadata["status"]) == (
        Code.FAILED_PRECONDITION,
        "INVOICE_NOT_PAYABLE",
        status,
    )


def test_rate_given_must_convert_the_pair() -> None:
    err = failure(rules.check_rate_given, rate("USD", "GBP", "0.8"), "USD", "EUR", "f")
    assert err.reason == "EXCHANGE_RATE_PAIR_MISMATCH"
    err = failure(rules.check_rate_given, rate("USD", "EUR", "0.9"), "EUR", "EUR", "f")
    assert err.reason == "EXCHANGE_RATE_NOT_NEEDED"
    rules.check_rate_given(rate("EUR", "USD", "1.1"), "USD", "EUR", "f")


def test_no_rate_names_pair_and_date() -> None:
    err = rules.no_rate("USD", "EUR", DAY)
    assert err.code is Code.FAILED_PRECONDITION
    assert "USD" in err.message and "EUR" in err.message and "2026-04-28" in err.message
    assert err.metadata == {"baseCurrency": "USD", "quoteCurrency": "EUR", "date": "2026-04-28"}


def test_composite_fx_rate_states_every_rate() -> None:
    assert rules.composite_fx_rate(None, None) is None
    text = rules.composite_fx_rate(rate("USD", "EUR", "0.9200"), rate("EUR", "GBP", "0.85"))
    assert text == "1 USD = 0.92 EUR (ecb, 2026-04-28); 1 EUR = 0.85 GBP (ecb, 2026-04-28)"


@pytest.mark.parametrize(
    ("text", "currency", "reason"),
    [
        ("0", "EUR", "OUT_OF_RANGE"),
        ("-1", "EUR", "OUT_OF_RANGE"),
        ("1.001", "EUR", None),
        ("1.5", "JPY", None),
        ("", "EUR", "REQUIRED"),
    ],
)
def test_parse_positive_rejects(text: str, currency: str, reason: str | None) -> None:
    err = failure(parse_positive, text, currency, "allocation.amount")
    assert err.code is Code.INVALID_ARGUMENT
    assert err.violations[0].field == "allocation.amount"
    if reason:
        assert err.reason == reason
