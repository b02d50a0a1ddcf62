"""Unit tests for service.invoices.rules: the declared rounding model (DESIGN.md
section 4) checked against an independent reference with Hypothesis, and the small
lifecycle rules. No database, no I/O."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.invoices import rules
from service.invoices.rules import LineInput
from service.kit import errors

CURRENCIES = {"JPY": 0, "EUR": 2, "BHD": 3, "CLF": 4}
TAX_RATES = [Decimal(r) for r in ("0", "0.021", "0.055", "0.07", "0.1", "0.196", "0.2", "0.25")]
REFERENCE = Context(prec=100, rounding=ROUND_HALF_UP)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# ---- an independent reference model ------------------------------------------------------


def _ref_round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP, context=REFERENCE)


def _exact(value: Decimal, places: int) -> bool:
    scaled = value.scaleb(places, context=REFERENCE)
    return scaled == scaled.to_integral_value(context=REFERENCE)


def _scaled(units: int, places: int) -> Decimal:
    return Decimal(units).scaleb(-places)


@st.composite
def _decimal(draw: st.DrawFn, *, minimum_units: int, max_whole: int) -> Decimal:
    places = draw(st.integers(0, 6))
    units = draw(st.integers(minimum_units, max_whole * 10**places))
    return _scaled(units, places)


@st.composite
def _line(draw: st.DrawFn, places: int) -> LineInput:
    quantity = draw(_decimal(minimum_units=1, max_whole=10_000))
    unit_price = draw(_decimal(minimum_units=0, max_whole=1_000_000))
    rate = draw(st.sampled_from(TAX_RATES))
    line_subtotal = _ref_round(REFERENCE.multiply(quantity, unit_price), places)
    max_units = int(line_subtotal.scaleb(places))
    discount_units = draw(
        st.one_of(st.just(0), st.just(max_units), st.integers(0, max(max_units, 0)))
    )
    return LineInput(
        description="x",
        quantity=quantity,
        unit_price=unit_price,
        tax_rate=rate,
        discount_amount=_scaled(discount_units, places),
    )


@st.composite
def _invoice_lines(draw: st.DrawFn) -> tuple[str, list[LineInput]]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    lines = draw(st.lists(_line(CURRENCIES[currency]), min_size=0, max_size=12))
    return currency, lines


# ---- properties of compute_totals ---------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(_invoice_lines())
def test_totals_match_reference_model_for_every_exponent(
    case: tuple[str, list[LineInput]],
) -> None:
    currency, items = case
    places = CURRENCIES[currency]
    totals = rules.compute_totals(items, currency)

    ref_subtotals = [
        _ref_round(REFERENCE.multiply(i.quantity, i.unit_price), places) for i in items
    ]
    ref_amounts = [s - i.discount_amount for s, i in zip(ref_subtotals, items, strict=True)]
    ref_taxes = [
        _ref_round(REFERENCE.multiply(a, i.tax_rate), places)
        for a, i in zip(ref_amounts, items, strict=True)
    ]

    assert len(totals.lines) == len(items)
    for line, sub, amount, tax in zip(
        totals.lines, ref_subtotals, ref_amounts, ref_taxes, strict=True
    ):
        assert line.subtotal == sub
        assert line.amount == amount
        assert line.tax_amount == tax
    assert totals.subtotal == sum(ref_subtotals, Decimal(0))
    assert totals.subtotal == sum((line.subtotal for line in totals.lines), Decimal(0))
    assert totals.discount_amount == sum((i.discount_amount for i in items), Decimal(0))
    assert totals.tax_amount == sum(ref_taxes, Decimal(0))
    assert totals.total == totals.subtotal + totals.tax_amount - totals.discount_amount
    assert totals.total >= 0


@settings(max_examples=300, deadline=None)
@given(_invoice_lines())
def test_every_computed_value_is_exact_to_minor_unit(case: tuple[str, list[LineInput]]) -> None:
    currency, items = case
    places = CURRENCIES[currency]
    totals = rules.compute_totals(items, currency)
    values = [totals.subtotal, totals.tax_amount, totals.discount_amount, totals.total]
    for line in totals.lines:
        values += [line.subtotal, line.amount, line.tax_amount]
    for row in totals.breakdown:
        values += [row.taxable_amount, row.tax_amount]
    for value in values:
        assert value.is_finite()
        assert _exact(value, places), (currency, value)


@settings(max_examples=300, deadline=None)
@given(_invoice_lines())
def test_tax_breakdown_sums_to_tax_amount_and_line_amounts(
    case: tuple[str, list[LineInput]],
) -> None:
    currency, items = case
    totals = rules.compute_totals(items, currency)
    breakdown = totals.breakdown

    assert sum((r.tax_amount for r in breakdown), Decimal(0)) == totals.tax_amount
    line_amounts = sum((line.amount for line in totals.lines), Decimal(0))
    assert sum((r.taxable_amount for r in breakdown), Decimal(0)) == line_amounts
    assert line_amounts == totals.subtotal - totals.discount_amount
    rates = [r.tax_rate for r in breakdown]
    assert len(set(rates)) == len(rates)
    assert rates == sorted(rates)
    assert set(rates) == {i.tax_rate for i in items}
    for row in breakdown:
        same_rate = [line for line in totals.lines if line.input.tax_rate == row.tax_rate]
        assert row.tax_amount == sum((line.tax_amount for line in same_rate), Decimal(0))
        assert row.taxable_amount == sum((line.amount for line in same_rate), Decimal(0))


def test_tax_breakdown_groups_equal_rates_written_differently() -> None:
    items = [
        LineInput(quantity=Decimal(1), unit_price=Decimal("10"), tax_rate=Decimal("0.20")),
        LineInput(quantity=Decimal(1), unit_price=Decimal("5"), tax_rate=Decimal("0.2")),
        LineInput(quantity=Decimal(1), unit_price=Decimal("1"), tax_rate=Decimal("0.200000")),
    ]
    totals = rules.compute_totals(items, "EUR")
    assert len(totals.breakdown) == 1
    row = totals.breakdown[0]
    assert row.tax_rate == Decimal("0.2")
    assert row.taxable_amount == Decimal("16.00")
    assert row.tax_amount == Decimal("3.20")


def test_empty_invoice_totals_are_zero() -> None:
    totals = rules.compute_totals([], "EUR")
    assert (totals.subtotal, totals.tax_amount, totals.discount_amount, totals.total) == (
        0,
        0,
        0,
        0,
    )
    assert totals.breakdown == ()


def test_sample_invoice_totals() -> None:
    items = [
        LineInput(quantity=Decimal(10), unit_price=Decimal("120.00"), tax_rate=Decimal("0.20"))
    ]
    totals = rules.compute_totals(items, "EUR")
    assert (totals.subtotal, totals.tax_amount, totals.total) == (
        Decimal("1200.00"),
        Decimal("240.00"),
        Decimal("1440.00"),
    )


# ---- rounding is half-up --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "quantity", "unit_price", "expected"),
    [
        ("EUR", "1", "0.005", "0.01"),
        ("EUR", "1", "0.125", "0.13"),  # banker's rounding would give 0.12
        ("EUR", "1", "0.004999", "0.00"),
        ("EUR", "3", "0.335", "1.01"),  # 1.005 -> 1.01
        ("JPY", "1", "2.5", "3"),  # banker's rounding would give 2
        ("JPY", "1", "0.5", "1"),
        ("JPY", "2.5", "1", "3"),
        ("BHD", "1", "0.0005", "0.001"),
        ("BHD", "1", "1.0025", "1.003"),
        ("CLF", "1", "0.00005", "0.0001"),
        ("CLF", "0.5", "0.0003", "0.0002"),  # 0.00015 -> 0.0002
    ],
)
def test_line_subtotal_rounds_half_up(
    currency: str, quantity: str, unit_price: str, expected: str
) -> None:
    line = rules.compute_line(
        LineInput(quantity=Decimal(quantity), unit_price=Decimal(unit_price)), currency, 0
    )
    assert line.subtotal == Decimal(expected)
    assert str(line.subtotal) == expected


@pytest.mark.parametrize(
    ("currency", "unit_price", "rate", "expected_tax"),
    [
        ("EUR", "0.10", "0.05", "0.01"),  # 0.005
        ("EUR", "0.50", "0.25", "0.13"),  # 0.125
        ("JPY", "15", "0.1", "2"),  # 1.5
        ("JPY", "25", "0.1", "3"),  # 2.5
        ("BHD", "0.010", "0.05", "0.001"),  # 0.0005
    ],
)
def test_line_tax_rounds_half_up(
    currency: str, unit_price: str, rate: str, expected_tax: str
) -> None:
    line = rules.compute_line(
        LineInput(quantity=Decimal(1), unit_price=Decimal(unit_price), tax_rate=Decimal(rate)),
        currency,
        0,
    )
    assert line.tax_amount == Decimal(expected_tax)


def test_tax_is_computed_per_line_then_summed() -> None:
    # Two lines of 0.10 EUR at 5 %: each tax 0.005 -> 0.01, so 0.02 (not round(0.01) of the sum).
    item = LineInput(quantity=Decimal(1), unit_price=Decimal("0.10"), tax_rate=Decimal("0.05"))
    totals = rules.compute_totals([item, item], "EUR")
    assert totals.tax_amount == Decimal("0.02")
    assert totals.total == Decimal("0.22")


def test_discount_applies_before_tax() -> None:
    item = LineInput(
        quantity=Decimal(2),
        unit_price=Decimal("50.00"),
        tax_rate=Decimal("0.20"),
        discount_amount=Decimal("10.00"),
    )
    totals = rules.compute_totals([item], "EUR")
    assert totals.lines[0].amount == Decimal("90.00")
    assert totals.tax_amount == Decimal("18.00")
    assert totals.total == Decimal("108.00")


@pytest.mark.parametrize("currency", sorted(CURRENCIES))
def test_discount_above_line_subtotal_is_invalid(currency: str) -> None:
    places = CURRENCIES[currency]
    minor = _scaled(1, places)
    item = LineInput(quantity=Decimal(1), unit_price=Decimal(5), discount_amount=5 + minor)
    with pytest.raises(errors.DomainError) as caught:
        rules.compute_totals(
            [LineInput(quantity=Decimal(1), unit_price=Decimal(1)), item], currency
        )
    assert caught.value.code == errors.Code.INVALID_ARGUMENT
    assert caught.value.reason == "DISCOUNT_EXCEEDS_SUBTOTAL"
    assert caught.value.violations[0].field == "invoice.line_items[1].discount_amount"


def test_discount_equal_to_line_subtotal_is_allowed() -> None:
    item = LineInput(
        quantity=Decimal(1),
        unit_price=Decimal("0.005"),
        tax_rate=Decimal("0.2"),
        discount_amount=Decimal("0.01"),
    )
    totals = rules.compute_totals([item], "EUR")
    assert totals.total == Decimal(0)


# ---- claimed totals -------------------------------------------------------------------------


def test_claimed_totals_equal_to_computed_pass() -> None:
    totals = rules.compute_totals(
        [LineInput(quantity=Decimal(10), unit_price=Decimal("120"), tax_rate=Decimal("0.2"))],
        "EUR",
    )
    rules.check_claimed_totals(
        totals,
        {
            "subtotal": Decimal("1200.00"),
            "tax_amount": Decimal("240"),
            "discount_amount": Decimal(0),
            "total": Decimal("1440.00"),
            "amount": Decimal("1440"),
        },
    )


def test_claimed_total_that_disagrees_is_invalid() -> None:
    totals = rules.compute_totals(
        [LineInput(quantity=Decimal(10), unit_price=Decimal("120"), tax_rate=Decimal("0.2"))],
        "EUR",
    )
    with pytest.raises(errors.DomainError) as caught:
        rules.check_claimed_totals(totals, {"total": Decimal("1440.01")})
    assert caught.value.code == errors.Code.INVALID_ARGUMENT
    assert caught.value.reason == "TOTAL_MISMATCH"
    assert caught.value.violations[0].field == "invoice.total"


# ---- lifecycle rules ------------------------------------------------------------------------


def _invoice(
    *,
    status: str = rules.DRAFT,
    invoice_type: str = rules.CUSTOMER,
    number: str | None = None,
    counterparty: uuid.UUID | None = None,
    with_lines: bool = True,
    amount_paid: Decimal = Decimal(0),
    version: int = 1,
    due_date: date | None = None,
    payment: str = rules.UNPAID,
) -> rules.Invoice:
    items = (
        (LineInput(quantity=Decimal(1), unit_price=Decimal("100.00"), tax_rate=Decimal("0.2")),)
        if with_lines
        else ()
    )
    totals = rules.compute_totals(items, "EUR")
    draft = rules.Draft(
        type=invoice_type,
        currency="EUR",
        direction=rules.DIRECTION_OF[invoice_type],
        number=number,
        counterparty_id=counterparty if counterparty is not None else uuid.uuid4(),
        due_date=due_date,
        line_items=items,
    )
    return rules.Invoice(
        id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        app_id=None,
        draft=draft,
        status=status,
        subtotal=totals.subtotal,
        tax_amount=totals.tax_amount,
        discount_amount=totals.discount_amount,
        total=totals.total,
        lines=totals.lines,
        breakdown=totals.breakdown,
        amount_paid=amount_paid,
        payment_status=payment,
        paid_at=None,
        project_sequence_id=None,
        schema_version=1,
        version=version,
        issued_at=None,
        voided_at=None,
        void_reason="",
        created_at=NOW,
        updated_at=NOW,
        created_by="u",
        updated_by="u",
        deleted_at=None,
        deleted_by=None,
    )


def _without_counterparty(invoice: rules.Invoice) -> rules.Invoice:
    return dataclasses.replace(
        invoice, draft=dataclasses.replace(invoice.draft, counterparty_id=None)
    )


def _fails(
    call: Any, *args: Any, code: errors.Code, reason: str, **kwargs: Any
) -> errors.DomainError:
    with pytest.raises(errors.DomainError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code
    assert caught.value.reason == reason
    return caught.value


def test_check_editable_draft_allows_every_draft_field() -> None:
    rules.check_editable(rules.DRAFT, sorted(rules.DRAFT_FIELDS))


def test_check_editable_issued_allows_only_annotations() -> None:
    rules.check_editable(rules.ISSUED, ["notes", "tags", "due_date", "document_ref"])
    for path in ("currency", "line_items", "counterparty_id", "number", "type", "issue_date"):
        err = _fails(
            rules.check_editable,
            rules.ISSUED,
            [path],
            code=errors.Code.FAILED_PRECONDITION,
            reason="FIELD_NOT_EDITABLE",
        )
        assert err.metadata["field"] == path
        assert err.metadata["status"] == rules.ISSUED


def test_check_editable_void_allows_nothing() -> None:
    rules.check_editable(rules.VOID, [])
    _fails(
        rules.check_editable,
        rules.VOID,
        ["notes"],
        code=errors.Code.FAILED_PRECONDITION,
        reason="FIELD_NOT_EDITABLE",
    )


def test_check_issuable_complete_draft_passes() -> None:
    rules.check_issuable(_invoice())
    rules.check_issuable(_invoice(invoice_type=rules.SUPPLIER, number="SUP-1"))


@pytest.mark.parametrize("status", [rules.ISSUED, rules.VOID])
def test_check_issuable_not_draft_fails(status: str) -> None:
    _fails(
        rules.check_issuable,
        _invoice(status=status, number="INV-2026-0001"),
        code=errors.Code.FAILED_PRECONDITION,
        reason="INVOICE_NOT_DRAFT",
    )


def test_check_issuable_incomplete_names_missing_fields() -> None:
    err = _fails(
        rules.check_issuable,
        _invoice(with_lines=False),
        code=errors.Code.FAILED_PRECONDITION,
        reason="INVOICE_INCOMPLETE",
    )
    assert err.metadata["missing"] == "line_items"
    err = _fails(
        rules.check_issuable,
        _without_counterparty(_invoice(invoice_type=rules.SUPPLIER, with_lines=False)),
        code=errors.Code.FAILED_PRECONDITION,
        reason="INVOICE_INCOMPLETE",
    )
    assert err.metadata["missing"].split(",") == ["line_items", "counterparty_id", "number"]


def test_check_voidable_issued_unpaid_passes() -> None:
    rules.check_voidable(_invoice(status=rules.ISSUED, number="INV-2026-0001"))


@pytest.mark.parametrize("status", [rules.DRAFT, rules.VOID])
def test_check_voidable_not_issued_fails(status: str) -> None:
    _fails(
        rules.check_voidable,
        _invoice(status=status, number="INV-2026-0001"),
        code=errors.Code.FAILED_PRECONDITION,
        reason="INVOICE_NOT_ISSUED",
    )


def test_check_voidable_with_allocations_fails() -> None:
    _fails(
        rules.check_voidable,
        _invoice(status=rules.ISSUED, number="INV-2026-0001", amount_paid=Decimal("0.01")),
        code=errors.Code.FAILED_PRECONDITION,
        reason="INVOICE_HAS_ALLOCATIONS",
    )


def test_check_deletable_only_drafts() -> None:
    rules.check_deletable(_invoice())
    _fails(
        rules.check_deletable,
        _invoice(status=rules.ISSUED, number="INV-2026-0001"),
        code=errors.Code.FAILED_PRECONDITION,
        reason="INVOICE_NOT_DRAFT",
    )


@pytest.mark.parametrize("etag", ["", 'W/"7"', '"7"', "7"])
def test_check_etag_matching_or_absent_passes(etag: str) -> None:
    rules.check_etag(_invoice(version=7), etag)


@pytest.mark.parametrize("etag", ['W/"6"', '"8"', "70", 'W/"7x"'])
def test_check_etag_stale_is_aborted(etag: str) -> None:
    err = _fails(
        rules.check_etag,
        _invoice(version=7),
        etag,
        code=errors.Code.ABORTED,
        reason="ETAG_MISMATCH",
    )
    assert err.metadata["etag"] == 'W/"7"'


def test_etag_of_and_normalize_etag() -> None:
    assert rules.etag_of(3) == 'W/"3"'
    assert _invoice(version=3).etag == 'W/"3"'
    assert rules.normalize_etag('W/"3"') == "3"
    assert rules.normalize_etag('"3"') == "3"
    assert rules.normalize_etag("3") == "3"


@given(st.integers(1, 10**9))
def test_normalize_etag_roundtrips_any_version(version: int) -> None:
    assert rules.normalize_etag(rules.etag_of(version)) == str(version)


@pytest.mark.parametrize(
    ("total", "paid", "expected"),
    [
        ("100.00", "0", rules.UNPAID),
        ("100.00", "0.01", rules.PARTIALLY_PAID),
        ("100.00", "99.99", rules.PARTIALLY_PAID),
        ("100.00", "100.00", rules.PAID),
        ("100.00", "100", rules.PAID),
    ],
)
def test_payment_status(total: str, paid: str, expected: str) -> None:
    assert rules.payment_status(Decimal(total), Decimal(paid)) == expected


@given(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**9), places=2),
    st.decimals(min_value=Decimal(0), max_value=Decimal(10**9), places=2),
)
def test_payment_status_is_monotonic_in_paid(total: Decimal, paid: Decimal) -> None:
    status = rules.payment_status(total, paid)
    if paid == 0:
        assert status == rules.UNPAID
    elif paid < total:
        assert status == rules.PARTIALLY_PAID
    else:
        assert status == rules.PAID


@pytest.mark.parametrize(
    ("prefix", "year", "sequence", "expected"),
    [
        ("INV", 2026, 1, "INV-2026-0001"),
        ("INV", 2026, 42, "INV-2026-0042"),
        ("INV", 2026, 9999, "INV-2026-9999"),
        ("INV", 2026, 10000, "INV-2026-10000"),
        ("ACME", 2027, 7, "ACME-2027-0007"),
    ],
)
def test_invoice_number(prefix: str, year: int, sequence: int, expected: str) -> None:
    assert rules.invoice_number(prefix, year, sequence) == expected


@given(st.integers(1, 9999), st.integers(1, 9999))
def test_invoice_numbers_sort_like_sequences(a: int, b: int) -> None:
    na, nb = rules.invoice_number("INV", 2026, a), rules.invoice_number("INV", 2026, b)
    assert (na < nb) == (a < b)


def test_resolve_direction_defaults_from_type() -> None:
    assert rules.resolve_direction(rules.CUSTOMER, None) == rules.RECEIVABLE
    assert rules.resolve_direction(rules.SUPPLIER, None) == rules.PAYABLE
    assert rules.resolve_direction(rules.CUSTOMER, rules.RECEIVABLE) == rules.RECEIVABLE
    assert rules.resolve_direction(rules.SUPPLIER, rules.PAYABLE) == rules.PAYABLE


@pytest.mark.parametrize(
    ("invoice_type", "direction"),
    [(rules.CUSTOMER, rules.PAYABLE), (rules.SUPPLIER, rules.RECEIVABLE)],
)
def test_resolve_direction_mismatch_is_invalid(invoice_type: str, direction: str) -> None:
    err = _fails(
        rules.resolve_direction,
        invoice_type,
        direction,
        code=errors.Code.INVALID_ARGUMENT,
        reason="TYPE_DIRECTION_MISMATCH",
    )
    assert err.violations[0].field == "invoice.direction"


def test_validate_draft_resolves_direction() -> None:
    draft = rules.validate_draft(rules.Draft(type=rules.SUPPLIER, currency="EUR", number="S-1"))
    assert draft.direction == rules.PAYABLE
    assert draft.number == "S-1"
    assert rules.validate_draft(rules.Draft(type=rules.CUSTOMER, currency="EUR")).direction == (
        rules.RECEIVABLE
    )


def test_validate_draft_customer_number_is_invalid() -> None:
    err = _fails(
        rules.validate_draft,
        rules.Draft(type=rules.CUSTOMER, currency="EUR", number="INV-2026-0001"),
        code=errors.Code.INVALID_ARGUMENT,
        reason="NUMBER_ASSIGNED_AT_ISSUE",
    )
    assert err.violations[0].field == "invoice.number"


def test_validate_draft_due_before_issue_is_invalid() -> None:
    err = _fails(
        rules.validate_draft,
        rules.Draft(
            type=rules.CUSTOMER,
            currency="EUR",
            issue_date=date(2026, 3, 2),
            due_date=date(2026, 3, 1),
        ),
        code=errors.Code.INVALID_ARGUMENT,
        reason="DUE_BEFORE_ISSUE",
    )
    assert err.violations[0].field == "invoice.due_date"


def test_validate_draft_due_on_issue_date_is_valid() -> None:
    same = date(2026, 3, 1)
    draft = rules.Draft(type=rules.CUSTOMER, currency="EUR", issue_date=same, due_date=same)
    assert rules.validate_draft(draft).due_date == same


def test_validate_draft_type_direction_mismatch_is_invalid() -> None:
    _fails(
        rules.validate_draft,
        rules.Draft(type=rules.CUSTOMER, currency="EUR", direction=rules.PAYABLE),
        code=errors.Code.INVALID_ARGUMENT,
        reason="TYPE_DIRECTION_MISMATCH",
    )


def test_is_overdue_only_for_unpaid_issued_past_due() -> None:
    today = date(2026, 3, 10)
    past = date(2026, 3, 9)
    issued = _invoice(status=rules.ISSUED, number="INV-2026-0001", due_date=past)
    assert rules.is_overdue(issued, today)
    assert not rules.is_overdue(dataclasses.replace(issued, status=rules.DRAFT), today)
    assert not rules.is_overdue(dataclasses.replace(issued, payment_status=rules.PAID), today)
    assert not rules.is_overdue(issued, past)
