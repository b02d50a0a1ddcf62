"""A parent's totals are its children's, exactly, in any currency (seed 002 aggregation)."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.invoices import rules

CURRENCIES = {"JPY": 0, "EUR": 2, "BHD": 3}


@st.composite
def children(draw: Any) -> tuple[str, list[Any]]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    places = CURRENCIES[currency]
    made = []
    for _ in range(draw(st.integers(1, 6))):
        lines = []
        for _ in range(draw(st.integers(1, 5))):
            quantity = Decimal(draw(st.integers(1, 10**6))) / 1000
            price = Decimal(draw(st.integers(0, 10**7))) / (10**places)
            rate = draw(st.sampled_from(["0", "0.055", "0.1", "0.2", "0.075"]))
            lines.append(
                rules.LineInput(quantity=quantity, unit_price=price, tax_rate=Decimal(rate))
            )
        totals = rules.compute_totals(lines, currency)
        made.append(
            SimpleNamespace(
                lines=totals.lines,
                breakdown=totals.breakdown,
                subtotal=totals.subtotal,
                discount_amount=totals.discount_amount,
                tax_amount=totals.tax_amount,
                total=totals.total,
            )
        )
    return currency, made


@settings(max_examples=300, deadline=None)
@given(children())
def test_parent_totals_are_the_sums_and_recomputing_them_drifts_nothing(
    case: tuple[str, list[Any]],
) -> None:
    currency, kids = case
    parent = rules.sum_totals(kids, currency)
    assert parent.total == sum(k.total for k in kids)
    assert parent.subtotal == sum(k.subtotal for k in kids)
    assert parent.tax_amount == sum(k.tax_amount for k in kids)
    assert parent.total == parent.subtotal + parent.tax_amount - parent.discount_amount
    assert sum(row.tax_amount for row in parent.breakdown) == parent.tax_amount
    # The parent's lines, computed again under the rounding model, give the same totals.
    again = rules.compute_totals([line.input for line in parent.lines], currency)
    assert (again.subtotal, again.tax_amount, again.total) == (
        parent.subtotal,
        parent.tax_amount,
        parent.total,
    )
    exponent = CURRENCIES[currency]
    assert parent.total == parent.total.quantize(Decimal(1).scaleb(-exponent))
